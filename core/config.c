/*
 * config.c - reads pgreviewer.yaml and its `include:` fragments into a
 * pgr_config (see config.h and DESIGN.md section 5).
 *
 * Loading runs in three stages, each over every file before the next:
 *
 *   1. read the main file and the fragments its `include:` globs name (in
 *      name order), and note where each top-level section was written. A
 *      mapping section may appear in one file only; `connections:` and
 *      `tasks:` lists are concatenated across files;
 *   2. read the mapping sections (defaults first: tasks inherit from it),
 *      then every connection, then every task, so that a task can be checked
 *      against connections defined in any file;
 *   3. hand back the config, or every error found.
 *
 * Errors do not stop the reading: each is recorded with its place and the
 * loader carries on, so that one run of `config check` shows them all. They
 * are sorted by file (main file first, then fragments in load order), line
 * and column, and the first MAX_REPORTED are returned. Every message is
 * "file:line:column: path: what is wrong and what would be valid", where
 * `path` is the field as written (`tasks[2].retry.max_attempts`; list indexes
 * count within the file that holds the list).
 *
 * Secrets never reach a message: a literal `password:` (or Vault token) is
 * refused without echoing its value.
 */
#include "config.h"
#include "loader.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#ifndef PGR_INSTALL_PLUGIN_DIR
#define PGR_INSTALL_PLUGIN_DIR "/usr/lib/pgreviewer/plugins"
#endif
#ifndef PGR_INSTALL_SYSCONFDIR
#define PGR_INSTALL_SYSCONFDIR "/etc"
#endif

#define MAX_REPORTED 20 /* errors handed back */
#define MAX_KEPT 200    /* errors remembered before sorting */

/* ---------------------------------------------------------------------- */
/* Loading state and error collection                                      */

enum { S_STORE, S_QUEUE, S_VAULT, S_WORKERS, S_PLUGINS, S_API, S_LOGGING, S_DEFAULTS, N_MAPSECT };

static const char *const MAP_SECTIONS[] = {"store",   "queue",   "vault",    "workers",
                                           "plugins", "api",     "logging",  "defaults",
                                           NULL};
static const char *const TOP_KEYS[] = {"include", "store",   "queue",    "vault",
                                       "workers", "plugins", "api",      "logging",
                                       "defaults", "connections", "tasks", NULL};

typedef struct cerr {
    size_t file_idx; /* position of the file in load order */
    int line, col;
    size_t seq;      /* discovery order, to keep the sort stable */
    char *text;
} cerr;

/* A list section (`connections:` / `tasks:`) as written in one file. */
typedef struct listsect {
    const ynode *list;
} listsect;

typedef struct loadctx {
    pgr_config *cfg;
    char *dir_given; /* the main file's directory as written ("" for none) */
    cerr *errs;
    size_t n_errs, n_seen;
    bool load_failed;
    const ynode *sect[N_MAPSECT], *sect_key[N_MAPSECT];
    listsect *conns, *tasks;
    size_t n_conns, n_tasks;
} loadctx;

static size_t file_index(const loadctx *c, const char *file)
{
    for (size_t i = 0; i < c->cfg->n_docs; i++)
        if (ydoc_file(c->cfg->docs[i]) == file)
            return i;
    return c->cfg->n_docs;
}

static void add_err(loadctx *c, size_t file_idx, int line, int col, char *text)
{
    c->n_seen++;
    if (c->n_errs >= MAX_KEPT) {
        free(text);
        return;
    }
    c->errs = xrealloc(c->errs, (c->n_errs + 1) * sizeof *c->errs);
    c->errs[c->n_errs++] = (cerr){file_idx, line, col, c->n_seen, text};
}

/* Record "file:line:column: message" at node `at`. */
static void err_at(loadctx *c, const ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_at(loadctx *c, const ynode *at, const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    sb_printf(&sb, "%s:%d:%d: ", at->file, at->line, at->col);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    add_err(c, file_index(c, at->file), at->line, at->col, sb_steal(&sb));
}

static int cmp_err(const void *a, const void *b)
{
    const cerr *x = a, *y = b;
    if (x->file_idx != y->file_idx)
        return x->file_idx < y->file_idx ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The errors as one string, one per line, sorted, at most MAX_REPORTED;
 * frees them. */
static char *take_errors(loadctx *c)
{
    strbuf sb = {0};
    qsort(c->errs, c->n_errs, sizeof *c->errs, cmp_err);
    for (size_t i = 0; i < c->n_errs; i++) {
        if (i < MAX_REPORTED)
            sb_printf(&sb, "%s\n", c->errs[i].text);
        free(c->errs[i].text);
    }
    free(c->errs);
    c->errs = NULL;
    c->n_errs = 0;
    return sb_steal(&sb);
}

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */

static size_t put(char *buf, size_t len, size_t off, const char *s)
{
    size_t n = strlen(s);
    if (off + 1 >= len)
        return off;
    if (n > len - off - 1)
        n = len - off - 1; /* a path cut short still reads well in a message */
    memcpy(buf + off, s, n);
    buf[off + n] = '\0';
    return off + n;
}

/* "path.key", or "key" at the top level, into buf. */
static const char *kp(char *buf, size_t len, const char *path, const char *key)
{
    size_t off = 0;
    buf[0] = '\0';
    if (path && *path) {
        off = put(buf, len, off, path);
        off = put(buf, len, off, ".");
    }
    put(buf, len, off, key);
    return buf;
}

/* The value of `key` in `map`, or NULL when absent or written as null
 * (`key:`, `key: ~`): an option left empty takes its default. */
static const ynode *opt(const ynode *map, const char *key)
{
    const ynode *n = ynode_get(map, key);
    return ynode_is_null(n) ? NULL : n;
}

static void set_str(char **dst, const char *value)
{
    free(*dst);
    *dst = xstrdup(value);
}

static char *path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0)
        return xstrdup(rel);
    return xasprintf("%s/%s", dir, rel);
}

/* Make *p absolute against the main file's directory. */
static void resolve_path(const loadctx *c, char **p)
{
    if (!*p || (*p)[0] == '/' || !(*p)[0])
        return;
    char *abs = xasprintf("%s/%s", c->cfg->base_dir, *p);
    free(*p);
    *p = abs;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Task names and connection ids: [A-Za-z0-9_.-]+ */
#define NAME_RULE "may contain only letters, digits, \"_\", \".\" and \"-\""
static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

/* Keys whose value would be a secret written in plain text, and what to
 * write instead. */
static const struct {
    const char *key, *advice;
} SECRET_KEYS[] = {
    {"password", "a password is never written in the configuration; use password_file "
                 "(a file only pgreviewer can read) or Vault (credentials: vault)"},
    {"token", "a Vault token is never written in the configuration; use token_file or the "
              "VAULT_TOKEN environment variable"},
    {"secret_id", "an AppRole secret_id is never written in the configuration; use "
                  "secret_id_file"},
};

static bool in_list(const char *word, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(word, *list) == 0)
            return true;
    return false;
}

static void list_words(strbuf *sb, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        sb_printf(sb, "%s%s", i ? ", " : "", list[i]);
}

/* Report every key of `map` not in `allowed`, with a "did you mean" hint.
 * Returns false when there was one. */
static bool check_keys(loadctx *c, const ynode *map, const char *path, const char *const *allowed)
{
    bool ok = true;
    for (size_t i = 0; i < map->len; i++) {
        const ynode *key = map->keys[i];
        char p[256];
        if (in_list(key->value, allowed))
            continue;
        ok = false;
        kp(p, sizeof p, path, key->value);
        bool secret = false;
        for (size_t s = 0; s < sizeof SECRET_KEYS / sizeof SECRET_KEYS[0]; s++) {
            if (strcmp(key->value, SECRET_KEYS[s].key) == 0) {
                err_at(c, key, "%s: %s", p, SECRET_KEYS[s].advice);
                secret = true;
            }
        }
        if (secret)
            continue;
        const char *hint = closest_word(key->value, allowed);
        if (hint) {
            err_at(c, key, "%s: unknown key; did you mean \"%s\"?", p, hint);
        } else {
            strbuf sb = {0};
            list_words(&sb, allowed);
            err_at(c, key, "%s: unknown key; valid keys are: %s", p, sb.buf);
            sb_free(&sb);
        }
    }
    return ok;
}

/* Check that `n` (the value at `path`) is a mapping. */
static bool want_map(loadctx *c, const ynode *n, const char *path)
{
    char d[96];
    if (n->kind == YNODE_MAP)
        return true;
    err_at(c, n, "%s: expected a mapping (key: value lines), got %s", path,
           ynode_describe(n, d, sizeof d));
    return false;
}

static void err_expected(loadctx *c, const ynode *n, const char *path, const char *key,
                         const char *what)
{
    char p[256], d[96];
    err_at(c, n, "%s: expected %s, got %s", kp(p, sizeof p, path, key), what,
           ynode_describe(n, d, sizeof d));
}

/* ---------------------------------------------------------------------- */
/* Typed reads. Each returns 1 when the key was set (and *out written),
 * 0 when absent (or null: *out keeps its default), -1 after an error.     */

static int get_string(loadctx *c, const ynode *map, const char *path, const char *key, char **out)
{
    const ynode *n = opt(map, key);
    if (!n)
        return 0;
    if (n->kind != YNODE_SCALAR) {
        err_expected(c, n, path, key, "a string");
        return -1;
    }
    set_str(out, n->value);
    return 1;
}

/* A string that must be set and not empty. */
static int need_string(loadctx *c, const ynode *map, const char *path, const char *key,
                       char **out)
{
    char p[256];
    int r = get_string(c, map, path, key, out);
    if (r == 0) {
        err_at(c, map, "%s: missing required key \"%s\"", path, key);
        return -1;
    }
    if (r > 0 && !**out) {
        err_at(c, opt(map, key), "%s: must not be empty", kp(p, sizeof p, path, key));
        return -1;
    }
    return r;
}

static int get_int(loadctx *c, const ynode *map, const char *path, const char *key,
                   long long min, long long max, int *out)
{
    char p[256];
    long long v;
    const ynode *n = opt(map, key);
    if (!n)
        return 0;
    if (ynode_int(n, &v) < 0) {
        err_expected(c, n, path, key, "an integer");
        return -1;
    }
    if (v < min || v > max) {
        kp(p, sizeof p, path, key);
        if (max == INT_MAX)
            err_at(c, n, "%s: must be at least %lld, got %lld", p, min, v);
        else
            err_at(c, n, "%s: must be between %lld and %lld, got %lld", p, min, max, v);
        return -1;
    }
    *out = (int)v;
    return 1;
}

static int get_double(loadctx *c, const ynode *map, const char *path, const char *key, double min,
                      double *out)
{
    char p[256];
    double v;
    const ynode *n = opt(map, key);
    if (!n)
        return 0;
    if (ynode_double(n, &v) < 0) {
        err_expected(c, n, path, key, "a number");
        return -1;
    }
    if (v < min) {
        err_at(c, n, "%s: must be at least %g, got %s", kp(p, sizeof p, path, key), min, n->value);
        return -1;
    }
    *out = v;
    return 1;
}

static int get_bool(loadctx *c, const ynode *map, const char *path, const char *key, bool *out)
{
    const ynode *n = opt(map, key);
    if (!n)
        return 0;
    if (ynode_bool(n, out) < 0) {
        err_expected(c, n, path, key, "true or false");
        return -1;
    }
    return 1;
}

static void err_scalar(loadctx *c, const ynode *n, const char *path, const char *key,
                       const char *what)
{
    char p[256], d[96];
    kp(p, sizeof p, path, key);
    if (n->kind == YNODE_SCALAR)
        err_at(c, n, "%s: expected %s, got \"%.60s\"", p, what, n->value);
    else
        err_at(c, n, "%s: expected %s, got %s", p, what, ynode_describe(n, d, sizeof d));
}

/* A duration (`30s`, `5m`, `2h`, `250ms`, `1h30m`, bare seconds). With
 * `positive`, zero is refused. */
static int get_duration(loadctx *c, const ynode *map, const char *path, const char *key,
                        bool positive, int64_t *out)
{
    char p[256];
    int64_t ms;
    const ynode *n = opt(map, key);
    if (!n)
        return 0;
    if (n->kind != YNODE_SCALAR || parse_duration_ms(n->value, &ms) < 0) {
        err_scalar(c, n, path, key, "a duration such as 30s, 5m or 2h");
        return -1;
    }
    if (positive && ms == 0) {
        err_at(c, n, "%s: must be longer than 0, such as 30s, 5m or 2h",
               kp(p, sizeof p, path, key));
        return -1;
    }
    *out = ms;
    return 1;
}

/* A byte size: `512MB`, `2GB`, `64kB`, a bare number of bytes. Units are
 * powers of 1024, as in postgresql.conf. */
static int parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"", 1},           {"B", 1},
                 {"kB", 1LL << 10}, {"KB", 1LL << 10}, {"K", 1LL << 10}, {"KiB", 1LL << 10},
                 {"MB", 1LL << 20}, {"M", 1LL << 20},  {"MiB", 1LL << 20},
                 {"GB", 1LL << 30}, {"G", 1LL << 30},  {"GiB", 1LL << 30},
                 {"TB", 1LL << 40}, {"T", 1LL << 40},  {"TiB", 1LL << 40}};
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mult)
                return -1;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

static int get_size(loadctx *c, const ynode *map, const char *path, const char *key, int64_t *out)
{
    int64_t v;
    const ynode *n = opt(map, key);
    if (!n)
        return 0;
    if (n->kind != YNODE_SCALAR || parse_size(n->value, &v) < 0) {
        err_scalar(c, n, path, key, "a size such as 512MB or 2GB");
        return -1;
    }
    *out = v;
    return 1;
}

/* One of `names` (NULL-terminated); *out gets its index. */
static int get_enum(loadctx *c, const ynode *map, const char *path, const char *key,
                    const char *const *names, int *out)
{
    char p[256], d[96];
    const ynode *n = opt(map, key);
    if (!n)
        return 0;
    for (int i = 0; n->kind == YNODE_SCALAR && names[i]; i++) {
        if (strcmp(n->value, names[i]) == 0) {
            *out = i;
            return 1;
        }
    }
    strbuf sb = {0};
    list_words(&sb, names);
    kp(p, sizeof p, path, key);
    if (n->kind == YNODE_SCALAR)
        err_at(c, n, "%s: must be one of: %s (got \"%.60s\")", p, sb.buf, n->value);
    else
        err_at(c, n, "%s: must be one of: %s (got %s)", p, sb.buf,
               ynode_describe(n, d, sizeof d));
    sb_free(&sb);
    return -1;
}

/* A time zone exists when the zoneinfo database has a TZif file by that
 * name. UTC is always known. The name must stay inside the database. */
static bool timezone_exists(const char *name)
{
    char path[512], magic[4];
    const char *dir = getenv("TZDIR");
    if (strcmp(name, "UTC") == 0)
        return true;
    if (!*name || name[0] == '/' || strstr(name, ".."))
        return false;
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

static int get_timezone(loadctx *c, const ynode *map, const char *path, const char *key,
                        char **out)
{
    char p[256];
    char *tz = NULL;
    int r = get_string(c, map, path, key, &tz);
    if (r <= 0)
        return r;
    if (!timezone_exists(tz)) {
        err_at(c, opt(map, key),
               "%s: unknown time zone \"%.60s\"; expected an IANA name such as UTC or "
               "Europe/Berlin (see /usr/share/zoneinfo)",
               kp(p, sizeof p, path, key), tz);
        free(tz);
        return -1;
    }
    free(*out);
    *out = tz;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Defaults                                                                */

static void retry_defaults(cfg_retry *r)
{
    r->max_attempts = 4;
    r->initial_ms = 30 * 1000;
    r->multiplier = 2;
    r->max_delay_ms = 10 * 60 * 1000;
    r->jitter = JITTER_FULL;
}

static void fill_defaults(pgr_config *cfg)
{
    cfg->store.retention_ms = 30LL * 86400 * 1000;
    cfg->store.retention_per_task = 0;
    cfg->queue.prefix = xstrdup("pgreviewer");
    cfg->vault.tls_verify = true;
    cfg->vault.auth_method = VAULT_AUTH_TOKEN;
    cfg->vault.approle_mount = xstrdup("approle");
    cfg->vault.kv_mount = xstrdup("secret");
    cfg->vault.path_template = xstrdup("database/connections/{connection_id}");
    cfg->vault.cache_ttl_ms = 5 * 60 * 1000;
    cfg->vault.timeout_ms = 10 * 1000;
    cfg->workers.processes = 4;
    cfg->workers.max_tasks_per_process = 1000;
    cfg->workers.max_memory_per_process = 0;
    cfg->workers.prefetch = 8;
    cfg->workers.shutdown_grace_ms = 30 * 1000;
    cfg->workers.kill_grace_ms = 5 * 1000;
    /* $PGREVIEWER_PLUGIN_DIR, else the build tree's plugins for a binary
     * run from the build tree, else the installed directory. */
    cfg->plugins.directory = xstrdup(loader_default_dir());
    cfg->plugins.config = json_object();
    cfg->api.listen = xstrdup("127.0.0.1:8080");
    cfg->logging.level = xstrdup("info");
    cfg->logging.format = xstrdup(isatty(STDERR_FILENO) ? "text" : "json");
    cfg->defaults.timezone = xstrdup("UTC");
    cfg->defaults.timeout_ms = 5 * 60 * 1000;
    retry_defaults(&cfg->defaults.retry);
}

/* ---------------------------------------------------------------------- */
/* Mapping sections                                                        */

static const char *const JITTER_NAMES[] = {"none", "full", "equal", NULL};

static void read_retry(loadctx *c, const ynode *map, const char *path, cfg_retry *r)
{
    static const char *const keys[] = {"max_attempts", "initial", "multiplier", "max_delay",
                                       "jitter", NULL};
    int jitter;
    if (!want_map(c, map, path))
        return;
    check_keys(c, map, path, keys);
    get_int(c, map, path, "max_attempts", 1, INT_MAX, &r->max_attempts);
    get_duration(c, map, path, "initial", false, &r->initial_ms);
    get_double(c, map, path, "multiplier", 1, &r->multiplier);
    get_duration(c, map, path, "max_delay", false, &r->max_delay_ms);
    if (get_enum(c, map, path, "jitter", JITTER_NAMES, &jitter) > 0)
        r->jitter = (cfg_jitter)jitter;
}

static void read_defaults(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"timezone", "timeout", "retry", NULL};
    pgr_config *cfg = c->cfg;
    check_keys(c, m, "defaults", keys);
    get_timezone(c, m, "defaults", "timezone", &cfg->defaults.timezone);
    get_duration(c, m, "defaults", "timeout", true, &cfg->defaults.timeout_ms);
    if (opt(m, "retry"))
        read_retry(c, opt(m, "retry"), "defaults.retry", &cfg->defaults.retry);
}

/* store.url must be a libpq URI or key=value string without a password.
 * Messages never quote it: it may hold a secret. */
static void check_store_url(loadctx *c, const ynode *n, const char *url)
{
    char *errmsg = NULL;
    bool has_password = false;
    PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
    if (!opts) {
        err_at(c, n, "store.url: not a valid libpq connection string; expected a URI such as "
                     "postgresql:///pgreviewer?host=/run/postgresql or key=value pairs");
        PQfreemem(errmsg);
        return;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            has_password = true;
    PQconninfoFree(opts);
    if (has_password)
        err_at(c, n, "store.url: a password is never written in the configuration; use a "
                     "password file (passfile=..., ~/.pgpass) or PGPASSWORD");
}

static void read_store(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"url", "retention", "retention_per_task", NULL};
    pgr_config *cfg = c->cfg;
    check_keys(c, m, "store", keys);
    if (need_string(c, m, "store", "url", &cfg->store.url) > 0)
        check_store_url(c, opt(m, "url"), cfg->store.url);
    get_duration(c, m, "store", "retention", false, &cfg->store.retention_ms);
    get_int(c, m, "store", "retention_per_task", 0, INT_MAX, &cfg->store.retention_per_task);
}

static void read_queue(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"url", "prefix", NULL};
    pgr_config *cfg = c->cfg;
    check_keys(c, m, "queue", keys);
    if (get_string(c, m, "queue", "url", &cfg->queue.url) > 0 &&
        !starts_with(cfg->queue.url, "redis://") && !starts_with(cfg->queue.url, "rediss://") &&
        !starts_with(cfg->queue.url, "unix://"))
        err_at(c, opt(m, "url"),
               "queue.url: expected a Redis URL such as redis://127.0.0.1:6379/0 or "
               "unix:///run/redis/redis.sock");
    if (get_string(c, m, "queue", "prefix", &cfg->queue.prefix) > 0 && !*cfg->queue.prefix)
        err_at(c, opt(m, "prefix"), "queue.prefix: must not be empty");
}

static void read_vault_auth(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"method", "token_file", "role_id_file", "secret_id_file",
                                       "mount", NULL};
    static const char *const methods[] = {"token", "approle", NULL};
    cfg_vault *v = &c->cfg->vault;
    int method = 0;
    if (!want_map(c, m, "vault.auth"))
        return;
    check_keys(c, m, "vault.auth", keys);
    if (get_enum(c, m, "vault.auth", "method", methods, &method) > 0)
        v->auth_method = method == 1 ? VAULT_AUTH_APPROLE : VAULT_AUTH_TOKEN;
    get_string(c, m, "vault.auth", "token_file", &v->token_file);
    get_string(c, m, "vault.auth", "role_id_file", &v->role_id_file);
    get_string(c, m, "vault.auth", "secret_id_file", &v->secret_id_file);
    get_string(c, m, "vault.auth", "mount", &v->approle_mount);
    if (v->auth_method == VAULT_AUTH_APPROLE) {
        if (!opt(m, "role_id_file"))
            err_at(c, m, "vault.auth: missing required key \"role_id_file\" (method: approle)");
        if (!opt(m, "secret_id_file"))
            err_at(c, m, "vault.auth: missing required key \"secret_id_file\" (method: approle)");
        if (opt(m, "token_file"))
            err_at(c, opt(m, "token_file"),
                   "vault.auth.token_file: only valid with method: token");
    } else {
        static const char *const approle_only[] = {"role_id_file", "secret_id_file", "mount"};
        for (size_t i = 0; i < 3; i++)
            if (opt(m, approle_only[i]))
                err_at(c, opt(m, approle_only[i]),
                       "vault.auth.%s: only valid with method: approle", approle_only[i]);
    }
    resolve_path(c, &v->token_file);
    resolve_path(c, &v->role_id_file);
    resolve_path(c, &v->secret_id_file);
}

static void read_vault(loadctx *c, const ynode *m, const ynode *key)
{
    static const char *const keys[] = {"address",  "namespace",     "ca_file",   "tls_verify",
                                       "auth",     "kv_mount",      "path_template",
                                       "cache_ttl", "timeout",      NULL};
    cfg_vault *v = &c->cfg->vault;
    v->enabled = true;
    v->mark = (cfg_mark){key->file, key->line, key->col};
    check_keys(c, m, "vault", keys);
    if (need_string(c, m, "vault", "address", &v->address) > 0 &&
        !starts_with(v->address, "https://") && !starts_with(v->address, "http://"))
        err_at(c, opt(m, "address"),
               "vault.address: expected a URL such as https://vault.internal:8200, got \"%.60s\"",
               v->address);
    if (get_string(c, m, "vault", "namespace", &v->namespace_) > 0 && !*v->namespace_) {
        free(v->namespace_);
        v->namespace_ = NULL;
    }
    get_string(c, m, "vault", "ca_file", &v->ca_file);
    resolve_path(c, &v->ca_file);
    get_bool(c, m, "vault", "tls_verify", &v->tls_verify);
    if (opt(m, "auth"))
        read_vault_auth(c, opt(m, "auth"));
    if (get_string(c, m, "vault", "kv_mount", &v->kv_mount) > 0 && !*v->kv_mount)
        err_at(c, opt(m, "kv_mount"), "vault.kv_mount: must not be empty");
    if (get_string(c, m, "vault", "path_template", &v->path_template) > 0 &&
        !*v->path_template)
        err_at(c, opt(m, "path_template"), "vault.path_template: must not be empty");
    get_duration(c, m, "vault", "cache_ttl", false, &v->cache_ttl_ms);
    get_duration(c, m, "vault", "timeout", true, &v->timeout_ms);
}

static void read_workers(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"processes",      "max_tasks_per_process",
                                       "max_memory_per_process", "prefetch",
                                       "shutdown_grace", "kill_grace",
                                       NULL};
    pgr_config *cfg = c->cfg;
    check_keys(c, m, "workers", keys);
    get_int(c, m, "workers", "processes", 1, 1024, &cfg->workers.processes);
    get_int(c, m, "workers", "max_tasks_per_process", 1, INT_MAX,
            &cfg->workers.max_tasks_per_process);
    get_size(c, m, "workers", "max_memory_per_process", &cfg->workers.max_memory_per_process);
    get_int(c, m, "workers", "prefetch", 0, 100000, &cfg->workers.prefetch);
    get_duration(c, m, "workers", "shutdown_grace", false, &cfg->workers.shutdown_grace_ms);
    get_duration(c, m, "workers", "kill_grace", false, &cfg->workers.kill_grace_ms);
}

static void read_plugin_config(loadctx *c, const ynode *m)
{
    char p[256];
    if (!want_map(c, m, "plugins.config"))
        return;
    for (size_t i = 0; i < m->len; i++) {
        const ynode *v = m->items[i];
        kp(p, sizeof p, "plugins.config", m->keys[i]->value);
        if (ynode_is_null(v)) {
            json_object_set_new(c->cfg->plugins.config, m->keys[i]->value, json_object());
        } else if (want_map(c, v, p)) {
            json_object_set_new(c->cfg->plugins.config, m->keys[i]->value, ynode_to_json(v));
        }
    }
}

static void read_plugins(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"directory", "config", NULL};
    check_keys(c, m, "plugins", keys);
    if (get_string(c, m, "plugins", "directory", &c->cfg->plugins.directory) > 0) {
        if (!*c->cfg->plugins.directory)
            err_at(c, opt(m, "directory"), "plugins.directory: must not be empty");
        resolve_path(c, &c->cfg->plugins.directory);
    }
    if (opt(m, "config"))
        read_plugin_config(c, opt(m, "config"));
}

/* "host:port" with a port 0..65535 (0: any free port, which the API logs);
 * the host may be "[v6]" or empty. */
static bool valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    char *end;
    if (!colon || !colon[1])
        return false;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    return !errno && !*end && isdigit((unsigned char)colon[1]) && port >= 0 && port <= 65535;
}

static void read_api(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"listen", NULL};
    const ynode *n = ynode_get(m, "listen");
    check_keys(c, m, "api", keys);
    if (n && ynode_is_null(n)) { /* `listen: ~` disables the API */
        free(c->cfg->api.listen);
        c->cfg->api.listen = NULL;
        return;
    }
    if (get_string(c, m, "api", "listen", &c->cfg->api.listen) > 0 && *c->cfg->api.listen &&
        !valid_listen(c->cfg->api.listen))
        err_at(c, n,
               "api.listen: expected host:port such as 127.0.0.1:8080 (or \"\" to disable the "
               "API), got \"%.60s\"",
               c->cfg->api.listen);
}

static void read_logging(loadctx *c, const ynode *m)
{
    static const char *const keys[] = {"level", "format", NULL};
    static const char *const levels[] = {"debug", "info", "warning", "error", NULL};
    static const char *const formats[] = {"json", "text", NULL};
    int i;
    check_keys(c, m, "logging", keys);
    if (get_enum(c, m, "logging", "level", levels, &i) > 0)
        set_str(&c->cfg->logging.level, levels[i]);
    if (get_enum(c, m, "logging", "format", formats, &i) > 0)
        set_str(&c->cfg->logging.format, formats[i]);
}

static void read_map_sections(loadctx *c)
{
    /* defaults first: tasks inherit from it */
    if (c->sect[S_DEFAULTS])
        read_defaults(c, c->sect[S_DEFAULTS]);
    if (c->sect[S_STORE])
        read_store(c, c->sect[S_STORE]);
    if (c->sect[S_QUEUE])
        read_queue(c, c->sect[S_QUEUE]);
    if (c->sect[S_VAULT])
        read_vault(c, c->sect[S_VAULT], c->sect_key[S_VAULT]);
    if (c->sect[S_WORKERS])
        read_workers(c, c->sect[S_WORKERS]);
    if (c->sect[S_PLUGINS])
        read_plugins(c, c->sect[S_PLUGINS]);
    if (c->sect[S_API])
        read_api(c, c->sect[S_API]);
    if (c->sect[S_LOGGING])
        read_logging(c, c->sect[S_LOGGING]);
}

/* ---------------------------------------------------------------------- */
/* Connections                                                             */

/* Keywords that connections[] sets as fields of their own. */
static const char *const CONN_FIELD_KEYWORDS[][2] = {
    {"host", "host"},         {"hostaddr", "host"},         {"port", "port"},
    {"dbname", "database"},   {"user", "username"},         {"sslmode", "sslmode"},
    {"connect_timeout", "connect_timeout"},
};

/* Is `kw` a libpq connection keyword? When not, the closest one (if any)
 * is written into hint (empty otherwise). */
static bool libpq_keyword(const char *kw, char *hint, size_t hintlen)
{
    PQconninfoOption *opts = PQconndefaults();
    const char **names;
    size_t n = 0;
    bool found = false;
    hint[0] = '\0';
    if (!opts)
        return true; /* cannot tell: let libpq judge at connect time */
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    names = xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        names[i] = opts[i].keyword;
        if (strcmp(kw, opts[i].keyword) == 0)
            found = true;
    }
    const char *h = found ? NULL : closest_word(kw, names);
    if (h)
        snprintf(hint, hintlen, "%s", h);
    free(names);
    PQconninfoFree(opts);
    return found;
}

static void read_conn_option(loadctx *c, cfg_connection *conn, const char *path, const ynode *k,
                             const ynode *v)
{
    char p[256], hint[64];
    kp(p, sizeof p, path, k->value);
    if (strcmp(k->value, "password") == 0) {
        err_at(c, k, "%s: %s", p, SECRET_KEYS[0].advice);
        return;
    }
    for (size_t i = 0; i < sizeof CONN_FIELD_KEYWORDS / sizeof CONN_FIELD_KEYWORDS[0]; i++) {
        if (strcmp(k->value, CONN_FIELD_KEYWORDS[i][0]) == 0) {
            err_at(c, k, "%s: set it as the connection's own key \"%s\"", p,
                   CONN_FIELD_KEYWORDS[i][1]);
            return;
        }
    }
    if (!libpq_keyword(k->value, hint, sizeof hint)) {
        if (hint[0])
            err_at(c, k, "%s: not a libpq connection keyword; did you mean \"%s\"?", p, hint);
        else
            err_at(c, k, "%s: not a libpq connection keyword (see the libpq documentation, "
                         "\"Parameter Key Words\")", p);
        return;
    }
    if (v->kind != YNODE_SCALAR) {
        err_expected(c, v, path, k->value, "a string");
        return;
    }
    json_object_set_new(conn->options, k->value, json_string(v->value));
}

static void read_conn_options(loadctx *c, cfg_connection *conn, const char *path, const ynode *m)
{
    char p[256];
    kp(p, sizeof p, path, "options");
    if (!want_map(c, m, p))
        return;
    conn->options = json_object();
    for (size_t i = 0; i < m->len; i++)
        read_conn_option(c, conn, p, m->keys[i], m->items[i]);
}

static void read_credentials(loadctx *c, cfg_connection *conn, const char *path, const ynode *n)
{
    static const char *const keys[] = {"username", "password_file", NULL};
    char p[256];
    kp(p, sizeof p, path, "credentials");
    if (n->kind == YNODE_SCALAR) {
        if (strcmp(n->value, "vault") == 0)
            conn->credentials = CRED_VAULT;
        else
            err_at(c, n,
                   "%s: expected \"vault\" or a mapping {username: NAME, password_file: "
                   "/path/to/file}, got \"%.60s\"",
                   p, n->value);
        return;
    }
    if (!want_map(c, n, p))
        return;
    check_keys(c, n, p, keys);
    get_string(c, n, p, "username", &conn->username);
    if (get_string(c, n, p, "password_file", &conn->password_file) > 0) {
        conn->credentials = CRED_PASSWORD_FILE;
        resolve_path(c, &conn->password_file);
    }
}

static void check_vault_ref(loadctx *c, const cfg_connection *conn, const ynode *m,
                            const char *path)
{
    char p[256];
    if (conn->credentials == CRED_VAULT && !c->cfg->vault.enabled)
        err_at(c, opt(m, "credentials"),
               "%s: \"vault\" needs a vault: section (address, auth) in the configuration; "
               "or use {username: NAME, password_file: /path/to/file}",
               kp(p, sizeof p, path, "credentials"));
}

static void check_conn_unique(loadctx *c, const cfg_connection *conn, const ynode *idnode,
                              const char *path)
{
    char p[256];
    kp(p, sizeof p, path, "id");
    if (strcmp(conn->id, "store") == 0) {
        err_at(c, idnode, "%s: \"store\" is reserved for the analytics store; choose another id",
               p);
        return;
    }
    if (!valid_name(conn->id)) {
        err_at(c, idnode, "%s: %s, got \"%.60s\"", p, NAME_RULE, conn->id);
        return;
    }
    const cfg_connection *first = config_find_connection(c->cfg, conn->id);
    if (first)
        err_at(c, idnode, "%s: duplicate connection id \"%s\" (first defined at %s:%d:%d)", p,
               conn->id, first->mark.file, first->mark.line, first->mark.col);
}

static void read_connection(loadctx *c, const ynode *m, const char *path)
{
    static const char *const keys[] = {"id",          "host",    "port",
                                       "database",    "username", "credentials",
                                       "sslmode",     "connect_timeout", "options",
                                       NULL};
    static const char *const sslmodes[] = {"disable", "allow", "prefer", "require",
                                           "verify-ca", "verify-full", NULL};
    cfg_connection conn = {0};
    int i;
    if (!want_map(c, m, path))
        return;
    conn.connect_timeout_ms = 10 * 1000;
    check_keys(c, m, path, keys);
    int have_id = need_string(c, m, path, "id", &conn.id);
    get_string(c, m, path, "host", &conn.host);
    get_int(c, m, path, "port", 1, 65535, &conn.port);
    get_string(c, m, path, "database", &conn.database);
    get_string(c, m, path, "username", &conn.username);
    if (opt(m, "credentials")) {
        char p[256];
        if (conn.username && opt(opt(m, "credentials"), "username"))
            err_at(c, ynode_key(opt(m, "credentials"), "username"),
                   "%s: username is set twice; keep either %s.username or this one",
                   kp(p, sizeof p, path, "credentials.username"), path);
        read_credentials(c, &conn, path, opt(m, "credentials"));
    }
    if (get_enum(c, m, path, "sslmode", sslmodes, &i) > 0)
        set_str(&conn.sslmode, sslmodes[i]);
    get_duration(c, m, path, "connect_timeout", true, &conn.connect_timeout_ms);
    if (opt(m, "options"))
        read_conn_options(c, &conn, path, opt(m, "options"));
    check_vault_ref(c, &conn, m, path);
    if (have_id > 0)
        check_conn_unique(c, &conn, opt(m, "id"), path);
    conn.mark = (cfg_mark){m->file, m->line, m->col};

    pgr_config *cfg = c->cfg;
    cfg->connections = xrealloc(cfg->connections, (cfg->n_connections + 1) * sizeof conn);
    cfg->connections[cfg->n_connections++] = conn;
}

/* ---------------------------------------------------------------------- */
/* Tasks                                                                   */

static void read_misfire(loadctx *c, cfg_task *t, const ynode *n, const char *path)
{
    static const char *const keys[] = {"policy", "grace", "max_runs", NULL};
    static const char *const policies[] = {"run_once", "skip", "run_all", NULL};
    char p[256];
    int i;
    kp(p, sizeof p, path, "misfire");
    if (n->kind == YNODE_SCALAR) { /* shorthand: `misfire: skip` */
        for (i = 0; policies[i]; i++)
            if (strcmp(n->value, policies[i]) == 0)
                break;
        if (policies[i])
            t->misfire = (cfg_misfire)i;
        else
            err_at(c, n, "%s: must be one of: run_once, skip, run_all (got \"%.60s\")", p,
                   n->value);
        return;
    }
    if (!want_map(c, n, p))
        return;
    check_keys(c, n, p, keys);
    if (get_enum(c, n, p, "policy", policies, &i) > 0)
        t->misfire = (cfg_misfire)i;
    get_duration(c, n, p, "grace", false, &t->misfire_grace_ms);
    get_int(c, n, p, "max_runs", 1, INT_MAX, &t->misfire_max_runs);
}

static void check_task_connection(loadctx *c, const cfg_task *t, const ynode *m,
                                  const char *path)
{
    char p[256];
    const ynode *n = opt(m, "connection");
    kp(p, sizeof p, path, "connection");
    if (strcmp(t->connection, "store") == 0) {
        if (!c->cfg->store.url)
            err_at(c, n, "%s: \"store\" reads the analytics store, but no store: section with a "
                         "url is configured", p);
        return;
    }
    if (config_find_connection(c->cfg, t->connection))
        return;
    const char **ids = xcalloc(c->cfg->n_connections + 2, sizeof *ids);
    for (size_t i = 0; i < c->cfg->n_connections; i++)
        ids[i] = c->cfg->connections[i].id;
    ids[c->cfg->n_connections] = "store";
    const char *hint = closest_word(t->connection, ids);
    if (hint) {
        err_at(c, n, "%s: no connection \"%.60s\" is defined; did you mean \"%s\"?", p,
               t->connection, hint);
    } else {
        strbuf sb = {0};
        list_words(&sb, ids);
        err_at(c, n, "%s: no connection \"%.60s\" is defined; expected one of: %s", p,
               t->connection, sb.buf);
        sb_free(&sb);
    }
    free(ids);
}

static void check_task_name(loadctx *c, const cfg_task *t, const ynode *m, const char *path)
{
    char p[256];
    const ynode *n = opt(m, "name");
    kp(p, sizeof p, path, "name");
    if (!valid_name(t->name)) {
        err_at(c, n, "%s: %s, got \"%.60s\"", p, NAME_RULE, t->name);
        return;
    }
    const cfg_task *first = config_find_task(c->cfg, t->name);
    if (first)
        err_at(c, n, "%s: duplicate task name \"%s\" (first defined at %s:%d:%d)", p, t->name,
               first->mark.file, first->mark.line, first->mark.col);
}

static void read_task_params(loadctx *c, cfg_task *t, const ynode *m, const char *path)
{
    char p[256];
    const ynode *n = opt(m, "params");
    kp(p, sizeof p, path, "params");
    if (n && want_map(c, n, p)) {
        t->params = ynode_to_json(n);
        t->params_node = n;
    } else {
        t->params = json_object();
    }
}

static void task_defaults(const pgr_config *cfg, cfg_task *t)
{
    t->timezone = xstrdup(cfg->defaults.timezone);
    t->priority = 5;
    t->timeout_ms = cfg->defaults.timeout_ms;
    t->concurrency = CONC_FORBID;
    t->misfire = MISFIRE_RUN_ONCE;
    t->misfire_grace_ms = 60 * 60 * 1000;
    t->misfire_max_runs = 10;
    t->jitter_ms = 0;
    t->enabled = true;
    t->retry = cfg->defaults.retry;
}

static void read_task(loadctx *c, const ynode *m, const char *path)
{
    static const char *const keys[] = {"name",     "type",        "connection", "schedule",
                                       "timezone", "description", "priority",   "timeout",
                                       "concurrency", "misfire",  "retry",      "params",
                                       "enabled",  "jitter",      NULL};
    static const char *const conc[] = {"forbid", "allow", "replace", NULL};
    char p[256];
    cfg_task t = {0};
    int i;
    if (!want_map(c, m, path))
        return;
    task_defaults(c->cfg, &t);
    check_keys(c, m, path, keys);
    int have_name = need_string(c, m, path, "name", &t.name);
    need_string(c, m, path, "type", &t.type);
    if (get_string(c, m, path, "connection", &t.connection) > 0)
        check_task_connection(c, &t, m, path);
    if (get_string(c, m, path, "schedule", &t.schedule) > 0 && !*t.schedule)
        err_at(c, opt(m, "schedule"),
               "%s: must not be empty; write a cron expression such as \"0 2 * * *\" or leave "
               "the key out to run the task only when triggered",
               kp(p, sizeof p, path, "schedule"));
    get_timezone(c, m, path, "timezone", &t.timezone);
    get_string(c, m, path, "description", &t.description);
    get_int(c, m, path, "priority", 0, 9, &t.priority);
    get_duration(c, m, path, "timeout", true, &t.timeout_ms);
    if (get_enum(c, m, path, "concurrency", conc, &i) > 0)
        t.concurrency = (cfg_concurrency)i;
    if (opt(m, "misfire"))
        read_misfire(c, &t, opt(m, "misfire"), path);
    if (opt(m, "retry"))
        read_retry(c, opt(m, "retry"), kp(p, sizeof p, path, "retry"), &t.retry);
    get_bool(c, m, path, "enabled", &t.enabled);
    get_duration(c, m, path, "jitter", false, &t.jitter_ms);
    read_task_params(c, &t, m, path);
    t.mark = (cfg_mark){m->file, m->line, m->col};
    if (have_name > 0)
        check_task_name(c, &t, m, path);

    pgr_config *cfg = c->cfg;
    cfg->tasks = xrealloc(cfg->tasks, (cfg->n_tasks + 1) * sizeof t);
    cfg->tasks[cfg->n_tasks++] = t;
}

/* Every item of every `connections:` (or `tasks:`) list, in file order. */
static void read_lists(loadctx *c, const listsect *lists, size_t n, const char *name,
                       void (*read_one)(loadctx *, const ynode *, const char *))
{
    char path[64], d[96];
    for (size_t l = 0; l < n; l++) {
        const ynode *list = lists[l].list;
        if (ynode_is_null(list))
            continue;
        if (list->kind != YNODE_SEQ) {
            err_at(c, list, "%s: expected a list (lines starting with \"- \"), got %s", name,
                   ynode_describe(list, d, sizeof d));
            continue;
        }
        for (size_t i = 0; i < list->len; i++) {
            snprintf(path, sizeof path, "%s[%zu]", name, i);
            read_one(c, list->items[i], path);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Files and includes                                                      */

/* Note where each top-level section of one file's root was written. */
static void collect_sections(loadctx *c, const ynode *root, bool is_main)
{
    char d[96];
    if (!root || ynode_is_null(root))
        return;
    if (root->kind != YNODE_MAP) {
        err_at(c, root, "the top level must be a mapping of sections (include, store, queue, "
                        "vault, workers, plugins, api, logging, defaults, connections, tasks), "
                        "got %s", ynode_describe(root, d, sizeof d));
        return;
    }
    check_keys(c, root, "", TOP_KEYS);
    for (size_t i = 0; i < root->len; i++) {
        const ynode *k = root->keys[i], *v = root->items[i];
        if (strcmp(k->value, "include") == 0 && !is_main)
            err_at(c, k, "include: only the main file may include other files");
        if (strcmp(k->value, "connections") == 0) {
            c->conns = xrealloc(c->conns, (c->n_conns + 1) * sizeof *c->conns);
            c->conns[c->n_conns++].list = v;
        }
        if (strcmp(k->value, "tasks") == 0) {
            c->tasks = xrealloc(c->tasks, (c->n_tasks + 1) * sizeof *c->tasks);
            c->tasks[c->n_tasks++].list = v;
        }
        for (int s = 0; s < N_MAPSECT; s++) {
            if (strcmp(k->value, MAP_SECTIONS[s]) != 0 || ynode_is_null(v))
                continue;
            if (c->sect_key[s]) {
                const ynode *f = c->sect_key[s];
                err_at(c, k, "%s: already defined at %s:%d:%d; a section may be set in one file "
                             "only", k->value, f->file, f->line, f->col);
            } else if (want_map(c, v, k->value)) {
                c->sect[s] = v;
                c->sect_key[s] = k;
            }
        }
    }
}

/* Read one file into cfg->docs. `from` is the include node that named it
 * (NULL for the main file). Returns the document or NULL (error recorded). */
static ydoc *load_doc(loadctx *c, const char *path, const ynode *from)
{
    char err[512];
    size_t len;
    char *text = read_file(path, &len, err, sizeof err);
    if (!text) {
        if (from)
            err_at(c, from, "include: %s", err);
        else
            add_err(c, 0, 0, 0, xstrdup(err));
        c->load_failed = true;
        return NULL;
    }
    ydoc *doc = ydoc_load_string(path, text, len, err, sizeof err);
    free(text);
    if (!doc) {
        add_err(c, c->cfg->n_docs, 0, 0, xstrdup(err));
        c->load_failed = true;
        return NULL;
    }
    pgr_config *cfg = c->cfg;
    cfg->docs = xrealloc(cfg->docs, (cfg->n_docs + 1) * sizeof *cfg->docs);
    cfg->docs[cfg->n_docs++] = doc;
    return doc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Has a file with the same real path been read already? */
static bool already_loaded(const loadctx *c, const char *path)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(path, a))
        return false;
    for (size_t i = 0; i < c->cfg->n_docs; i++)
        if (realpath(ydoc_file(c->cfg->docs[i]), b) && strcmp(a, b) == 0)
            return true;
    return false;
}

/* Read the files one glob names, in name order. */
static void include_glob(loadctx *c, const ynode *pat)
{
    glob_t g;
    char *full = path_join(c->dir_given, pat->value);
    int r = glob(full, GLOB_NOSORT | GLOB_NOMAGIC, NULL, &g);
    if (r == GLOB_NOMATCH) {
        free(full);
        return; /* a glob with no fragment yet is fine */
    }
    if (r != 0) {
        err_at(c, pat, "include: cannot expand \"%s\": %s", full,
               r == GLOB_ABORTED ? "a directory cannot be read" : "out of memory");
        free(full);
        return;
    }
    qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, cmp_str);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (already_loaded(c, g.gl_pathv[i]))
            continue;
        ydoc *doc = load_doc(c, g.gl_pathv[i], pat);
        if (doc)
            collect_sections(c, ydoc_root(doc), false);
    }
    globfree(&g);
    free(full);
}

static void read_includes(loadctx *c, const ynode *inc)
{
    char d[96];
    if (!inc || ynode_is_null(inc))
        return;
    if (inc->kind == YNODE_SCALAR) {
        include_glob(c, inc);
        return;
    }
    if (inc->kind == YNODE_SEQ) {
        for (size_t i = 0; i < inc->len; i++) {
            if (inc->items[i]->kind == YNODE_SCALAR)
                include_glob(c, inc->items[i]);
            else
                err_at(c, inc->items[i], "include[%zu]: expected a glob such as conf.d/*.yaml, "
                                         "got %s", i, ynode_describe(inc->items[i], d, sizeof d));
        }
        return;
    }
    err_at(c, inc, "include: expected a glob such as conf.d/*.yaml or a list of globs, got %s",
           ynode_describe(inc, d, sizeof d));
}

static void set_paths(pgr_config *cfg, loadctx *c, const char *path)
{
    char buf[PATH_MAX];
    const char *slash = strrchr(path, '/');
    cfg->path = xstrdup(path);
    if (!slash)
        c->dir_given = xstrdup(".");
    else if (slash == path)
        c->dir_given = xstrdup("/");
    else
        c->dir_given = xstrndup(path, (size_t)(slash - path));
    cfg->base_dir = xstrdup(realpath(c->dir_given, buf) ? buf : c->dir_given);
}

/* ---------------------------------------------------------------------- */
/* Public                                                                  */

pgr_config *config_defaults(void)
{
    pgr_config *cfg = xcalloc(1, sizeof *cfg);
    fill_defaults(cfg);
    return cfg;
}

pgr_config *config_load(const char *path, char **errors)
{
    loadctx c = {0};
    pgr_config *cfg = config_defaults();
    c.cfg = cfg;
    set_paths(cfg, &c, path);

    ydoc *main_doc = load_doc(&c, path, NULL);
    if (main_doc) {
        collect_sections(&c, ydoc_root(main_doc), true);
        read_includes(&c, ynode_get(ydoc_root(main_doc), "include"));
    }
    /* A file that did not parse leaves holes: references into it would only
     * add false errors, so stop at what was found so far. */
    if (!c.load_failed) {
        read_map_sections(&c);
        read_lists(&c, c.conns, c.n_conns, "connections", read_connection);
        read_lists(&c, c.tasks, c.n_tasks, "tasks", read_task);
    }
    free(c.conns);
    free(c.tasks);
    free(c.dir_given);
    if (errors)
        *errors = NULL;
    if (c.n_errs == 0)
        return cfg;
    char *text = take_errors(&c);
    if (errors)
        *errors = text;
    else
        free(text);
    config_free(cfg);
    return NULL;
}

static void free_connection(cfg_connection *conn)
{
    free(conn->id);
    free(conn->host);
    free(conn->database);
    free(conn->username);
    free(conn->password_file);
    free(conn->sslmode);
    json_decref(conn->options);
}

static void free_task(cfg_task *t)
{
    free(t->name);
    free(t->type);
    free(t->connection);
    free(t->schedule);
    free(t->timezone);
    free(t->description);
    json_decref(t->params);
}

static void free_vault(cfg_vault *v)
{
    free(v->address);
    free(v->namespace_);
    free(v->ca_file);
    free(v->token_file);
    free(v->role_id_file);
    free(v->secret_id_file);
    free(v->approle_mount);
    free(v->kv_mount);
    free(v->path_template);
}

void config_free(pgr_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_connections; i++)
        free_connection(&cfg->connections[i]);
    free(cfg->connections);
    for (size_t i = 0; i < cfg->n_tasks; i++)
        free_task(&cfg->tasks[i]);
    free(cfg->tasks);
    free_vault(&cfg->vault);
    free(cfg->path);
    free(cfg->base_dir);
    free(cfg->store.url);
    free(cfg->queue.url);
    free(cfg->queue.prefix);
    free(cfg->plugins.directory);
    json_decref(cfg->plugins.config);
    free(cfg->api.listen);
    free(cfg->logging.level);
    free(cfg->logging.format);
    free(cfg->defaults.timezone);
    for (size_t i = 0; i < cfg->n_docs; i++)
        ydoc_free(cfg->docs[i]);
    free(cfg->docs);
    free(cfg);
}

const cfg_task *config_find_task(const pgr_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_tasks; i++)
        if (cfg->tasks[i].name && strcmp(cfg->tasks[i].name, name) == 0)
            return &cfg->tasks[i];
    return NULL;
}

const cfg_connection *config_find_connection(const pgr_config *cfg, const char *id)
{
    for (size_t i = 0; cfg && id && i < cfg->n_connections; i++)
        if (cfg->connections[i].id && strcmp(cfg->connections[i].id, id) == 0)
            return &cfg->connections[i];
    return NULL;
}

const char *config_default_path(void)
{
    const char *env = getenv("PGREVIEWER_CONFIG");
    if (env && *env)
        return env;
    return PGR_INSTALL_SYSCONFDIR "/pgreviewer/pgreviewer.yaml";
}
