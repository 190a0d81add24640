/*
 * credentials.c - from a configured connection to libpq keywords and an
 * open PGconn (see credentials.h for the rules of precedence).
 *
 * The keyword list is small (a dozen entries), so it is kept as two
 * parallel arrays with linear look-ups: that is exactly the shape
 * PQconnectdbParams() wants, with no conversion step where a copy of the
 * password could be left behind.
 */
#include "credentials.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char **g_keywords; /* from PQconndefaults(), NULL-terminated */
static pthread_once_t g_keywords_once = PTHREAD_ONCE_INIT;

static void load_keywords(void)
{
    PQconninfoOption *opts = PQconndefaults();
    size_t n = 0;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        n++;
    g_keywords = xcalloc(n + 1, sizeof *g_keywords);
    for (size_t i = 0; i < n; i++)
        g_keywords[i] = xstrdup(opts[i].keyword);
    PQconninfoFree(opts);
}

bool credentials_is_libpq_keyword(const char *keyword)
{
    pthread_once(&g_keywords_once, load_keywords);
    for (const char **k = g_keywords; *k; k++)
        if (strcmp(*k, keyword) == 0)
            return true;
    return false;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

void credentials_free(credentials *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->keywords[i]);
        wipe_free(c->values[i]);
    }
    free(c->keywords);
    free(c->values);
    free(c->source);
    free(c);
}

const char *credentials_get(const credentials *c, const char *keyword)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->keywords[i], keyword) == 0)
            return c->values[i];
    return NULL;
}

/* Set keyword to a copy of value, replacing (and wiping) an earlier one. */
static void kv_set(credentials *c, const char *keyword, const char *value)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->keywords[i], keyword) == 0) {
            wipe_free(c->values[i]);
            c->values[i] = xstrdup(value);
            return;
        }
    }
    c->keywords = xrealloc(c->keywords, (c->n + 2) * sizeof *c->keywords);
    c->values = xrealloc(c->values, (c->n + 2) * sizeof *c->values);
    c->keywords[c->n] = xstrdup(keyword);
    c->values[c->n] = xstrdup(value);
    c->n++;
    c->keywords[c->n] = NULL;
    c->values[c->n] = NULL;
}

/* A JSON scalar as libpq text: strings as is, integers and reals printed,
 * booleans as 1/0. Returns false for null, arrays and objects. */
static bool json_scalar_text(const json_t *v, char *buf, size_t len, const char **out)
{
    if (json_is_string(v)) {
        *out = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = buf;
    } else if (json_is_real(v)) {
        snprintf(buf, len, "%g", json_real_value(v));
        *out = buf;
    } else if (json_is_boolean(v)) {
        *out = json_is_true(v) ? "1" : "0";
    } else {
        return false;
    }
    return true;
}

static int from_config_options(credentials *c, const cfg_connection *conn, char *err,
                               size_t errlen)
{
    const char *key, *text;
    json_t *v;
    char num[64];

    pthread_once(&g_keywords_once, load_keywords);
    json_object_foreach(conn->options, key, v) {
        if (strcmp(key, "password") == 0)
            return set_err(err, errlen,
                           "connection %s: options.password is not allowed: keep the password in "
                           "Vault (credentials: vault) or in a password_file",
                           conn->id);
        if (!credentials_is_libpq_keyword(key)) {
            const char *hint = closest_word(key, g_keywords);
            return set_err(err, errlen,
                           "connection %s: options.%s is not a libpq connection keyword%s%s%s",
                           conn->id, key, hint ? " (did you mean \"" : "", hint ? hint : "",
                           hint ? "\"?)" : "");
        }
        if (!json_scalar_text(v, num, sizeof num, &text))
            return set_err(err, errlen, "connection %s: options.%s must be a string or a number",
                           conn->id, key);
        kv_set(c, key, text);
    }
    return 0;
}

static int from_config(credentials *c, const cfg_connection *conn, char *err, size_t errlen)
{
    char num[32];
    if (conn->host)
        kv_set(c, "host", conn->host);
    if (conn->port > 0) {
        snprintf(num, sizeof num, "%d", conn->port);
        kv_set(c, "port", num);
    }
    if (conn->database)
        kv_set(c, "dbname", conn->database);
    if (conn->username)
        kv_set(c, "user", conn->username);
    if (conn->sslmode)
        kv_set(c, "sslmode", conn->sslmode);
    return from_config_options(c, conn, err, errlen);
}

/* The secret's keys: aliases mapped, libpq keywords kept, the rest
 * ignored (a rotation engine may store its own metadata there). */
static void from_secret(credentials *c, json_t *secret)
{
    const char *key, *text;
    json_t *v;
    char num[64];
    json_object_foreach(secret, key, v) {
        const char *kw = strcmp(key, "database") == 0   ? "dbname"
                         : strcmp(key, "username") == 0 ? "user"
                                                        : key;
        if (!credentials_is_libpq_keyword(kw) || !json_scalar_text(v, num, sizeof num, &text))
            continue;
        kv_set(c, kw, text);
    }
}

static int from_vault(credentials *c, const cfg_connection *conn, vault_client *vault, char *err,
                      size_t errlen)
{
    if (!vault)
        return set_err(err, errlen,
                       "connection %s: credentials: vault, but the configuration has no vault: "
                       "section",
                       conn->id);
    char *loc = vault_secret_location(vault, conn->id, err, errlen);
    if (!loc)
        return -1;
    c->source = xasprintf("vault %s", loc);
    free(loc);
    json_t *secret = NULL;
    char why[1024];
    if (vault_read_secret(vault, conn->id, &secret, why, sizeof why) < 0)
        return set_err(err, errlen, "connection %s: %s", conn->id, why);
    from_secret(c, secret);
    vault_secret_free(secret);
    return 0;
}

static int from_password_file(credentials *c, const cfg_connection *conn, char *err,
                              size_t errlen)
{
    char why[512];
    c->source = xasprintf("password file %s", conn->password_file ? conn->password_file : "");
    if (!conn->password_file)
        return set_err(err, errlen, "connection %s: password_file is not set", conn->id);
    char *pw = read_secret_file(conn->password_file, why, sizeof why);
    if (!pw)
        return set_err(err, errlen, "connection %s: password_file %s", conn->id, why);
    kv_set(c, "password", pw);
    wipe_free(pw);
    return 0;
}

/* application_name, connect_timeout, statement_timeout. */
static void add_runtime(credentials *c, const cfg_connection *conn, const cred_opts *opts)
{
    char buf[64];
    const char *task = opts && opts->task_name ? opts->task_name : NULL;
    char *app = task ? xasprintf("pgreviewer/%s", task) : xstrdup("pgreviewer");
    kv_set(c, "application_name", app);
    free(app);
    if (conn->connect_timeout_ms > 0) {
        snprintf(buf, sizeof buf, "%" PRId64, (conn->connect_timeout_ms + 999) / 1000);
        kv_set(c, "connect_timeout", buf);
    }
    if (opts && opts->statement_timeout_ms > 0) {
        const char *old = credentials_get(c, "options");
        char *o = xasprintf("%s%s-c statement_timeout=%" PRId64, old ? old : "", old ? " " : "",
                            opts->statement_timeout_ms);
        kv_set(c, "options", o);
        free(o);
    }
}

credentials *credentials_resolve(const cfg_connection *conn, vault_client *vault,
                                 const cred_opts *opts, char *err, size_t errlen)
{
    credentials *c = xcalloc(1, sizeof *c);
    c->kind = conn->credentials;
    c->keywords = xcalloc(1, sizeof *c->keywords);
    c->values = xcalloc(1, sizeof *c->values);
    if (from_config(c, conn, err, errlen) < 0)
        goto fail;
    int rc = 0;
    switch (conn->credentials) {
    case CRED_VAULT:
        rc = from_vault(c, conn, vault, err, errlen);
        break;
    case CRED_PASSWORD_FILE:
        rc = from_password_file(c, conn, err, errlen);
        break;
    case CRED_LIBPQ:
        c->source = xstrdup("libpq environment / .pgpass");
        break;
    }
    if (rc < 0)
        goto fail;
    add_runtime(c, conn, opts);
    return c;
fail:
    credentials_free(c);
    return NULL;
}

/* ---- connecting ---------------------------------------------------------- */

/* libpq's message on one line, without the trailing newline. */
static void pq_message(PGconn *pg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", pg ? PQerrorMessage(pg) : "out of memory");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

/* SQLSTATE 28P01 (invalid_password). libpq has no SQLSTATE for a failed
 * connection attempt, so this reads the server's message. */
static bool password_rejected(const char *msg)
{
    return strstr(msg, "password authentication failed") || strstr(msg, "28P01");
}

static void connect_error(const cfg_connection *conn, const credentials *c, const char *msg,
                          bool rejected, char *err, size_t errlen)
{
    if (rejected && c->kind == CRED_VAULT)
        set_err(err, errlen,
                "connection %s: the server rejected the password from %s, also after re-reading "
                "it from Vault in case it was rotated: %s",
                conn->id, c->source, msg);
    else if (rejected)
        set_err(err, errlen, "connection %s: the server rejected the password from %s: %s",
                conn->id, c->source, msg);
    else
        set_err(err, errlen, "connection %s: cannot connect (credentials from %s): %s", conn->id,
                c->source, msg);
    vault_redact(err, errlen, credentials_get(c, "password"));
}

/* Connect with `c`. Returns the connection, or NULL with libpq's message
 * in msg. */
static PGconn *try_connect(const credentials *c, char *msg, size_t len)
{
    PGconn *pg = PQconnectdbParams((const char *const *)c->keywords,
                                   (const char *const *)c->values, 0);
    if (pg && PQstatus(pg) == CONNECTION_OK)
        return pg;
    pq_message(pg, msg, len);
    PQfinish(pg);
    return NULL;
}

static bool same_password(const credentials *a, const credentials *b)
{
    const char *pa = credentials_get(a, "password"), *pb = credentials_get(b, "password");
    return pa && pb ? strcmp(pa, pb) == 0 : pa == pb;
}

PGconn *credentials_connect(const cfg_connection *conn, vault_client *vault,
                            const cred_opts *opts, char **source, char *err, size_t errlen)
{
    char msg[1024];
    if (source)
        *source = NULL;
    credentials *c = credentials_resolve(conn, vault, opts, err, errlen);
    if (!c)
        return NULL;
    PGconn *pg = try_connect(c, msg, sizeof msg);
    bool rejected = !pg && password_rejected(msg);
    if (rejected && c->kind == CRED_VAULT) {
        /* Rotated? Read it again; retry only when it did change, so that a
         * wrong password costs the server one failed login, not two. */
        vault_invalidate(vault, conn->id);
        credentials *again = credentials_resolve(conn, vault, opts, err, errlen);
        if (!again) {
            credentials_free(c);
            return NULL;
        }
        bool changed = !same_password(c, again);
        credentials_free(c);
        c = again;
        if (changed) {
            pg = try_connect(c, msg, sizeof msg);
            rejected = !pg && password_rejected(msg);
        }
    }
    if (pg && source)
        *source = xstrdup(c->source);
    if (!pg)
        connect_error(conn, c, msg, rejected, err, errlen);
    credentials_free(c);
    return pg;
}
