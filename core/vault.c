/*
 * vault.c - the Vault KV v2 client (see vault.h for what it talks to and
 * the process/thread rules).
 *
 * Layout: transport (one curl easy handle, answers collected into a
 * buffer that is wiped after use), error classification (one message per
 * failure class, so a user can tell a sealed Vault from a missing policy),
 * authentication (token, AppRole, renewal), the cache, and the read.
 *
 * Why the care with memory: answers carry tokens (login, lookup-self
 * echoes the token as data.id) and passwords (the secret). Every buffer
 * and JSON tree that held one is wiped before it is freed, and every error
 * message is redacted, because a core dump or a log line is the usual way
 * such strings escape.
 */
#include "vault.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define VAULT_MAX_ANSWER (1024 * 1024)
#define DEFAULT_TIMEOUT_MS 10000

typedef struct cache_entry {
    char *id;
    json_t *data;       /* owned; wiped on drop */
    int64_t expires_ms; /* mono_ms() */
} cache_entry;

struct vault_client {
    const cfg_vault *cfg;
    char *address;       /* without trailing '/' */
    const char *approle_mount, *kv_mount, *path_template;
    int64_t timeout_ms;

    CURL *curl;
    pid_t curl_pid;      /* the process that created `curl` */
    char curl_err[CURL_ERROR_SIZE];

    char *token;         /* NULL until authenticated; wiped on drop */
    bool renewable;
    int64_t renew_due_ms;/* 0: never */

    cache_entry *cache;
    size_t n_cache;
};

/* An HTTP answer. `body` may hold secrets: resp_free() wipes it. */
typedef struct vresp {
    long status;
    strbuf body;
    bool too_big;
    json_t *json;        /* parsed body, or NULL when empty / not JSON */
} vresp;

static char *g_env_token; /* VAULT_TOKEN captured by vault_capture_env_token() */
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;

/* ---- memory hygiene ---------------------------------------------------- */

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* Zero every string value in a JSON tree, in place (jansson hands out its
 * own buffers through json_string_value()). */
static void json_wipe(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;

    if (json_is_string(j)) {
        explicit_bzero((char *)json_string_value(j), json_string_length(j));
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v)
            json_wipe(v);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            json_wipe(v);
    }
}

void vault_secret_free(json_t *secret)
{
    if (!secret)
        return;
    if (secret->refcount == 1)
        json_wipe(secret);
    json_decref(secret);
}

static void resp_free(vresp *r)
{
    if (r->body.buf)
        explicit_bzero(r->body.buf, r->body.cap);
    sb_free(&r->body);
    if (r->json)
        vault_secret_free(r->json);
    memset(r, 0, sizeof *r);
}

void vault_redact(char *msg, size_t size, const char *secret)
{
    static const char mask[] = "[redacted]";
    if (!msg || !secret || !*secret || !strstr(msg, secret))
        return;
    strbuf out = {0};
    size_t slen = strlen(secret);
    const char *p = msg, *hit;
    while ((hit = strstr(p, secret)) != NULL) {
        sb_appendn(&out, p, (size_t)(hit - p));
        sb_append(&out, mask);
        p = hit + slen;
    }
    sb_append(&out, p);
    snprintf(msg, size, "%s", out.buf);
    explicit_bzero(out.buf, out.cap);
    sb_free(&out);
}

/* ---- construction -------------------------------------------------------- */

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
    if (!path || !*path)
        return set_err(err, errlen, "vault: %s is required", what);
    if (access(path, R_OK) != 0)
        return set_err(err, errlen, "vault: %s %s: cannot read: %s", what, path, strerror(errno));
    return 0;
}

static int check_config(const cfg_vault *cfg, char *err, size_t errlen)
{
    if (!cfg->address || !*cfg->address)
        return set_err(err, errlen, "vault: address is required (e.g. https://vault.internal:8200)");
    if (strncmp(cfg->address, "http://", 7) != 0 && strncmp(cfg->address, "https://", 8) != 0)
        return set_err(err, errlen, "vault: address \"%s\" must start with https:// or http://",
                       cfg->address);
    if (cfg->ca_file && check_readable("ca_file", cfg->ca_file, err, errlen) < 0)
        return -1;
    if (cfg->auth_method == VAULT_AUTH_APPROLE) {
        if (check_readable("auth.role_id_file", cfg->role_id_file, err, errlen) < 0 ||
            check_readable("auth.secret_id_file", cfg->secret_id_file, err, errlen) < 0)
            return -1;
    } else if (cfg->token_file && check_readable("auth.token_file", cfg->token_file, err, errlen) < 0) {
        return -1;
    }
    return 0;
}

vault_client *vault_new(const cfg_vault *cfg, char *err, size_t errlen)
{
    if (check_config(cfg, err, errlen) < 0)
        return NULL;
    pthread_once(&g_curl_once, curl_init_once);

    vault_client *vc = xcalloc(1, sizeof *vc);
    vc->cfg = cfg;
    vc->address = xstrdup(cfg->address);
    size_t n = strlen(vc->address);
    while (n > 0 && vc->address[n - 1] == '/')
        vc->address[--n] = '\0';
    vc->approle_mount = cfg->approle_mount && *cfg->approle_mount ? cfg->approle_mount : "approle";
    vc->kv_mount = cfg->kv_mount && *cfg->kv_mount ? cfg->kv_mount : "secret";
    vc->path_template = cfg->path_template && *cfg->path_template
                            ? cfg->path_template
                            : "database/connections/{connection_id}";
    vc->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    return vc;
}

static void drop_token(vault_client *vc)
{
    wipe_free(vc->token);
    vc->token = NULL;
    vc->renewable = false;
    vc->renew_due_ms = 0;
}

static void cache_drop(cache_entry *e)
{
    free(e->id);
    vault_secret_free(e->data);
    memset(e, 0, sizeof *e);
}

void vault_free(vault_client *vc)
{
    if (!vc)
        return;
    /* A handle inherited from a parent is abandoned, not cleaned up. */
    if (vc->curl && vc->curl_pid == getpid())
        curl_easy_cleanup(vc->curl);
    drop_token(vc);
    for (size_t i = 0; i < vc->n_cache; i++)
        cache_drop(&vc->cache[i]);
    free(vc->cache);
    free(vc->address);
    free(vc);
}

void vault_capture_env_token(void)
{
    char *v = getenv("VAULT_TOKEN");
    if (!v)
        return;
    if (*v) {
        wipe_free(g_env_token);
        g_env_token = xstrdup(v);
        explicit_bzero(v, strlen(v)); /* the environment block itself */
    }
    unsetenv("VAULT_TOKEN");
}

/* ---- transport ----------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    vresp *r = arg;
    size_t n = size * nmemb;
    if (r->body.len + n > VAULT_MAX_ANSWER) {
        r->too_big = true;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    /* Grow by hand so that no stale copy of a secret is left behind by
     * realloc moving the buffer. */
    if (r->body.len + n + 1 > r->body.cap) {
        size_t cap = r->body.cap ? r->body.cap : 4096;
        while (cap < r->body.len + n + 1)
            cap *= 2;
        char *nb = xmalloc(cap);
        if (r->body.buf) {
            memcpy(nb, r->body.buf, r->body.len);
            explicit_bzero(r->body.buf, r->body.cap);
            free(r->body.buf);
        }
        r->body.buf = nb;
        r->body.cap = cap;
    }
    memcpy(r->body.buf + r->body.len, data, n);
    r->body.len += n;
    r->body.buf[r->body.len] = '\0';
    return n;
}

/* The curl handle of this process (see vault.h on fork). */
static CURL *handle(vault_client *vc)
{
    if (vc->curl && vc->curl_pid != getpid())
        vc->curl = NULL; /* the parent's: abandoned on purpose */
    if (!vc->curl) {
        vc->curl = curl_easy_init();
        if (!vc->curl) {
            fprintf(stderr, "pgreviewer: curl_easy_init failed (out of memory)\n");
            abort();
        }
        vc->curl_pid = getpid();
    }
    return vc->curl;
}

static void wipe_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

static struct curl_slist *make_headers(const vault_client *vc, bool with_token)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (with_token && vc->token) {
        char *line = xasprintf("X-Vault-Token: %s", vc->token);
        h = curl_slist_append(h, line);
        wipe_free(line);
    }
    if (vc->cfg->namespace_ && *vc->cfg->namespace_) {
        char *line = xasprintf("X-Vault-Namespace: %s", vc->cfg->namespace_);
        h = curl_slist_append(h, line);
        free(line);
    }
    return h;
}

static void setup_request(vault_client *vc, CURL *c, const char *url, vresp *r)
{
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)vc->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)vc->timeout_ms);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, vc->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    long verify = vc->cfg->tls_verify ? 1L : 0L;
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (vc->cfg->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, vc->cfg->ca_file);
}

static int transport_error(vault_client *vc, CURLcode rc, const vresp *r, const char *what,
                           char *err, size_t errlen)
{
    const char *detail = vc->curl_err[0] ? vc->curl_err : curl_easy_strerror(rc);
    char dur[32];
    long os_errno = 0;

    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        if (curl_easy_getinfo(vc->curl, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
            os_errno == ECONNREFUSED)
            return set_err(err, errlen, "cannot connect to Vault at %s: connection refused",
                           vc->address);
        return set_err(err, errlen, "cannot connect to Vault at %s: %s", vc->address, detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return set_err(err, errlen, "cannot resolve the host of Vault address %s: %s",
                       vc->address, detail);
    case CURLE_OPERATION_TIMEDOUT:
        return set_err(err, errlen, "Vault at %s did not answer within %s (vault.timeout)",
                       vc->address, format_duration_ms(vc->timeout_ms, dur, sizeof dur));
    case CURLE_PEER_FAILED_VERIFICATION:
        return set_err(err, errlen,
                       "TLS verification of Vault at %s failed: %s; set vault.ca_file to the CA "
                       "certificate that signed Vault's certificate",
                       vc->address, detail);
    case CURLE_SSL_CACERT_BADFILE:
        return set_err(err, errlen, "vault.ca_file %s cannot be used as a CA bundle: %s",
                       vc->cfg->ca_file ? vc->cfg->ca_file : "(system default)", detail);
    case CURLE_SSL_CONNECT_ERROR:
        return set_err(err, errlen, "TLS handshake with Vault at %s failed: %s", vc->address,
                       detail);
    case CURLE_WRITE_ERROR:
        if (r->too_big)
            return set_err(err, errlen,
                           "Vault at %s sent a malformed answer to %s: larger than %d bytes",
                           vc->address, what, VAULT_MAX_ANSWER);
        /* fall through */
    default:
        return set_err(err, errlen, "cannot talk to Vault at %s: %s", vc->address, detail);
    }
}

/* Send one request to /v1/<api_path>. Returns 0 when an HTTP answer came
 * back (any status; r->json parsed when the body is JSON), or -1 with a
 * transport error in err. `body` (may be NULL: GET) is sent as is. */
static int http(vault_client *vc, const char *method, const char *api_path, const char *body,
                bool with_token, vresp *r, const char *what, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    CURL *c = handle(vc);
    char *url = xasprintf("%s/v1/%s", vc->address, api_path);
    struct curl_slist *h = make_headers(vc, with_token);
    bool post = strcmp(method, "POST") == 0;
    if (post)
        h = curl_slist_append(h, "Content-Type: application/json");

    vc->curl_err[0] = '\0';
    setup_request(vc, c, url, r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (post)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    CURLcode rc = curl_easy_perform(c);
    /* The handle keeps pointers to the headers and body: unhook them
     * before they are wiped. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    wipe_headers(h);
    free(url);
    if (rc != CURLE_OK)
        return transport_error(vc, rc, r, what, err, errlen);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body.len > 0)
        r->json = json_loadb(r->body.buf, r->body.len, 0, NULL);
    return 0;
}

/* ---- error classification ---------------------------------------------- */

/* Vault's `{"errors": [...]}` joined with "; ", or "" (at most len-1). */
static void errors_text(const vresp *r, char *buf, size_t len)
{
    json_t *errs = json_object_get(r->json, "errors"), *e;
    size_t i, off = 0;
    buf[0] = '\0';
    json_array_foreach(errs, i, e) {
        if (!json_is_string(e) || off >= len)
            continue;
        int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", json_string_value(e));
        if (n < 0)
            break;
        off += (size_t)n;
    }
    for (char *p = buf; *p; p++) /* Vault's multi-line error lists */
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

static bool is_sealed(const vresp *r)
{
    char text[512];
    if (r->status != 503)
        return false;
    errors_text(r, text, sizeof text);
    return strstr(text, "sealed") != NULL;
}

/* The message for an answer the caller has no better word for. */
static int http_error(const vault_client *vc, const vresp *r, const char *what, char *err,
                      size_t errlen)
{
    char text[512];
    if (is_sealed(r))
        return set_err(err, errlen, "Vault at %s is sealed: unseal it (vault operator unseal) and retry",
                       vc->address);
    errors_text(r, text, sizeof text);
    return set_err(err, errlen, "Vault at %s %s %s: HTTP %ld%s%s", vc->address,
                   r->status >= 500 ? "failed" : "refused", what, r->status, text[0] ? ": " : "",
                   text);
}

static int malformed(const vault_client *vc, const char *what, const char *why, char *err,
                     size_t errlen)
{
    return set_err(err, errlen, "Vault at %s sent a malformed answer to %s: %s", vc->address,
                   what, why);
}

/* ---- authentication ------------------------------------------------------ */

/* Take ownership of `token`, valid for ttl_s seconds (0: forever). */
static void set_token(vault_client *vc, char *token, json_int_t ttl_s, bool renewable)
{
    drop_token(vc);
    vc->token = token;
    vc->renewable = renewable;
    vc->renew_due_ms = ttl_s > 0 ? mono_ms() + (int64_t)ttl_s * 1000 * 2 / 3 : 0;
}

/* `.auth` of a login or renewal answer: client_token (may be absent for a
 * renewal), lease_duration, renewable. */
static int parse_auth(const vresp *r, char **token, json_int_t *ttl, bool *renewable)
{
    json_t *auth = json_object_get(r->json, "auth");
    json_t *tok = json_object_get(auth, "client_token");
    json_t *lease = json_object_get(auth, "lease_duration");
    if (!json_is_object(auth) || !json_is_integer(lease))
        return -1;
    if (token) {
        if (!json_is_string(tok) || json_string_length(tok) == 0)
            return -1;
        *token = xstrdup(json_string_value(tok));
    }
    *ttl = json_integer_value(lease);
    *renewable = json_is_true(json_object_get(auth, "renewable"));
    return 0;
}

/* read_secret_file() with the configuration key in the message. */
static char *read_auth_file(const char *key, const char *path, char *err, size_t errlen)
{
    char why[512];
    char *s = read_secret_file(path, why, sizeof why);
    if (!s)
        set_err(err, errlen, "vault.auth.%s: %s", key, why);
    return s;
}

/* POST the login and make sense of the answer. */
static int approle_login(vault_client *vc, const char *role_id, const char *secret_id,
                         char *err, size_t errlen)
{
    char what[160], text[512];
    snprintf(what, sizeof what, "AppRole login (auth/%s/login)", vc->approle_mount);
    json_t *req = json_pack("{s:s, s:s}", "role_id", role_id, "secret_id", secret_id);
    char *body = json_dumps(req, JSON_COMPACT);
    vault_secret_free(req);
    char *path = xasprintf("auth/%s/login", vc->approle_mount);
    vresp r;
    int rc = http(vc, "POST", path, body, false, &r, what, err, errlen);
    free(path);
    wipe_free(body);
    if (rc < 0)
        return -1;

    char *token = NULL;
    json_int_t ttl = 0;
    bool renewable = false;
    if (r.status == 200) {
        if (parse_auth(&r, &token, &ttl, &renewable) < 0)
            rc = malformed(vc, what, "no auth.client_token and auth.lease_duration", err, errlen);
        else
            set_token(vc, token, ttl, renewable);
    } else if (r.status == 400 || r.status == 403 || r.status == 404) {
        errors_text(&r, text, sizeof text);
        rc = set_err(err, errlen,
                     "Vault AppRole login at %s (auth/%s/login) failed: HTTP %ld%s%s; check "
                     "vault.auth.role_id_file, vault.auth.secret_id_file and vault.auth.mount",
                     vc->address, vc->approle_mount, r.status, text[0] ? ": " : "", text);
    } else {
        rc = http_error(vc, &r, what, err, errlen);
    }
    resp_free(&r);
    return rc;
}

/* Read role_id and secret_id (again at every login: an orchestrator may
 * have rotated the secret_id file) and log in. */
static int auth_approle(vault_client *vc, char *err, size_t errlen)
{
    char *role_id = read_auth_file("role_id_file", vc->cfg->role_id_file, err, errlen);
    if (!role_id)
        return -1;
    char *secret_id = read_auth_file("secret_id_file", vc->cfg->secret_id_file, err, errlen);
    if (!secret_id) {
        wipe_free(role_id);
        return -1;
    }
    int rc = approle_login(vc, role_id, secret_id, err, errlen);
    if (rc < 0) { /* in case Vault's error text echoes them */
        vault_redact(err, errlen, secret_id);
        vault_redact(err, errlen, role_id);
    }
    wipe_free(secret_id);
    wipe_free(role_id);
    return rc;
}

/* The token for token auth, and where it came from (for messages). */
static char *find_token(const vault_client *vc, const char **source, char *err, size_t errlen)
{
    if (vc->cfg->token_file) {
        *source = "vault.auth.token_file";
        return read_auth_file("token_file", vc->cfg->token_file, err, errlen);
    }
    *source = "the VAULT_TOKEN environment variable";
    if (g_env_token)
        return xstrdup(g_env_token);
    const char *env = getenv("VAULT_TOKEN");
    if (env && *env)
        return xstrdup(env);
    set_err(err, errlen, "no Vault token: set vault.auth.token_file or the VAULT_TOKEN environment variable");
    return NULL;
}

static int auth_token(vault_client *vc, char *err, size_t errlen)
{
    const char *source, *what = "token lookup (auth/token/lookup-self)";
    char *token = find_token(vc, &source, err, errlen);
    if (!token)
        return -1;
    set_token(vc, token, 0, false);

    vresp r;
    if (http(vc, "GET", "auth/token/lookup-self", NULL, true, &r, what, err, errlen) < 0) {
        vault_redact(err, errlen, vc->token);
        drop_token(vc);
        return -1;
    }
    int rc = 0;
    json_t *data = json_object_get(r.json, "data");
    json_t *ttl = json_object_get(data, "ttl");
    if (r.status == 200 && json_is_integer(ttl)) {
        bool renewable = json_is_true(json_object_get(data, "renewable"));
        vc->renewable = renewable;
        json_int_t t = json_integer_value(ttl);
        vc->renew_due_ms = t > 0 ? mono_ms() + (int64_t)t * 1000 * 2 / 3 : 0;
    } else if (r.status == 200) {
        rc = malformed(vc, what, "no data.ttl", err, errlen);
    } else if (r.status == 403) {
        rc = set_err(err, errlen,
                     "Vault at %s rejected the token from %s: permission denied (is it expired or "
                     "revoked?)",
                     vc->address, source);
    } else {
        rc = http_error(vc, &r, what, err, errlen);
    }
    resp_free(&r);
    if (rc < 0) {
        vault_redact(err, errlen, vc->token);
        drop_token(vc);
    }
    return rc;
}

static int authenticate(vault_client *vc, char *err, size_t errlen)
{
    if (vc->cfg->auth_method == VAULT_AUTH_APPROLE)
        return auth_approle(vc, err, errlen);
    return auth_token(vc, err, errlen);
}

/* POST renew-self. Returns 0 when renewed; -1 otherwise (err filled, but
 * callers fall back to a new login and report that one's error). */
static int renew(vault_client *vc, char *err, size_t errlen)
{
    const char *what = "token renewal (auth/token/renew-self)";
    vresp r;
    if (http(vc, "POST", "auth/token/renew-self", "{}", true, &r, what, err, errlen) < 0)
        return -1;
    json_int_t ttl = 0;
    bool renewable = false;
    int rc = -1;
    if (r.status == 200 && parse_auth(&r, NULL, &ttl, &renewable) == 0) {
        vc->renewable = renewable;
        vc->renew_due_ms = ttl > 0 ? mono_ms() + (int64_t)ttl * 1000 * 2 / 3 : 0;
        rc = 0;
    } else {
        http_error(vc, &r, what, err, errlen);
    }
    resp_free(&r);
    return rc;
}

int vault_maintain(vault_client *vc, char *err, size_t errlen)
{
    int rc = 0;
    if (!vc->token) {
        rc = authenticate(vc, err, errlen);
    } else if (vc->renew_due_ms && mono_ms() >= vc->renew_due_ms) {
        if (!(vc->renewable && renew(vc, err, errlen) == 0))
            rc = authenticate(vc, err, errlen);
    }
    if (rc < 0)
        vault_redact(err, errlen, vc->token);
    return rc;
}

int64_t vault_renew_due_ms(const vault_client *vc)
{
    return vc->token ? vc->renew_due_ms : 0;
}

/* ---- the cache ------------------------------------------------------------ */

static cache_entry *cache_find(vault_client *vc, const char *id)
{
    for (size_t i = 0; i < vc->n_cache; i++)
        if (strcmp(vc->cache[i].id, id) == 0)
            return &vc->cache[i];
    return NULL;
}

void vault_invalidate(vault_client *vc, const char *connection_id)
{
    cache_entry *e = vc ? cache_find(vc, connection_id) : NULL;
    if (!e)
        return;
    cache_drop(e);
    *e = vc->cache[--vc->n_cache];
}

static void cache_put(vault_client *vc, const char *id, json_t *data, int64_t ttl_ms)
{
    vault_invalidate(vc, id);
    if (ttl_ms <= 0) {
        vault_secret_free(data);
        return;
    }
    vc->cache = xrealloc(vc->cache, (vc->n_cache + 1) * sizeof *vc->cache);
    vc->cache[vc->n_cache++] = (cache_entry){xstrdup(id), data, mono_ms() + ttl_ms};
}

/* ---- reading a secret ----------------------------------------------------- */

static bool id_usable(const char *id)
{
    if (!id || !*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return false;
    for (const char *p = id; *p; p++)
        if (*p == '/' || *p == '?' || *p == '#' || *p == '%' || (unsigned char)*p <= ' ')
            return false;
    return true;
}

/* path_template with every {connection_id} replaced. Caller frees. */
static char *expand_path(const vault_client *vc, const char *id)
{
    static const char var[] = "{connection_id}";
    strbuf sb = {0};
    const char *p = vc->path_template, *hit;
    while ((hit = strstr(p, var)) != NULL) {
        sb_appendn(&sb, p, (size_t)(hit - p));
        sb_append(&sb, id);
        p = hit + sizeof var - 1;
    }
    sb_append(&sb, p);
    return sb_steal(&sb);
}

char *vault_secret_location(const vault_client *vc, const char *connection_id, char *err,
                            size_t errlen)
{
    if (!id_usable(connection_id)) {
        set_err(err, errlen,
                "connection id \"%s\" cannot be used in a Vault path: it must be non-empty, not "
                "\".\" or \"..\", without '/', '?', '#', '%%' or spaces",
                connection_id ? connection_id : "");
        return NULL;
    }
    char *path = expand_path(vc, connection_id);
    char *loc = xasprintf("%s/data/%s", vc->kv_mount, path);
    free(path);
    return loc;
}

static int read_answer(vault_client *vc, const char *id, const char *loc, const vresp *r,
                       json_t **data, char *err, size_t errlen)
{
    char what[600];
    snprintf(what, sizeof what, "reading %s", loc);
    if (r->status == 404) {
        char *path = expand_path(vc, id), text[512];
        errors_text(r, text, sizeof text);
        set_err(err, errlen,
                "no secret in Vault at %s (vault.kv_mount \"%s\", path \"%s\" from "
                "vault.path_template)%s%s: write the secret there or fix kv_mount/path_template",
                loc, vc->kv_mount, path, text[0] ? ": " : "", text);
        free(path);
        return -1;
    }
    if (r->status == 403)
        return set_err(err, errlen,
                       "Vault denied reading %s: permission denied: the token/role lacks a policy "
                       "granting read on %s",
                       loc, loc);
    if (r->status != 200)
        return http_error(vc, r, what, err, errlen);
    if (!r->json)
        return malformed(vc, what, "not JSON", err, errlen);
    json_t *secret = json_object_get(json_object_get(r->json, "data"), "data");
    if (!json_is_object(secret))
        return malformed(vc, what, "no \"data.data\" object", err, errlen);

    int64_t ttl = vc->cfg->cache_ttl_ms;
    json_t *lease = json_object_get(r->json, "lease_duration");
    if (json_is_integer(lease) && json_integer_value(lease) > 0 &&
        json_integer_value(lease) * 1000 < ttl)
        ttl = json_integer_value(lease) * 1000;
    cache_put(vc, id, json_deep_copy(secret), ttl);
    *data = json_deep_copy(secret);
    return 0;
}

int vault_read_secret(vault_client *vc, const char *connection_id, json_t **data, char *err,
                      size_t errlen)
{
    *data = NULL;
    char *loc = vault_secret_location(vc, connection_id, err, errlen);
    if (!loc)
        return -1;
    cache_entry *e = cache_find(vc, connection_id);
    if (e && mono_ms() < e->expires_ms) {
        /* Keep the token alive even when reads are served from the cache;
         * a failure here is reported by the next read that needs Vault. */
        if (vc->token && vc->renew_due_ms && mono_ms() >= vc->renew_due_ms)
            vault_maintain(vc, NULL, 0);
        *data = json_deep_copy(e->data);
        free(loc);
        return 0;
    }
    char what[600];
    snprintf(what, sizeof what, "reading %s", loc);
    vresp r = {0};
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        resp_free(&r);
        if (vault_maintain(vc, err, errlen) < 0)
            goto out;
        if (http(vc, "GET", loc, NULL, true, &r, what, err, errlen) < 0)
            goto out;
        if (r.status != 403 || attempt == 1)
            break;
        drop_token(vc); /* revoked or expired? log in again, once */
    }
    rc = read_answer(vc, connection_id, loc, &r, data, err, errlen);
out:
    if (rc < 0)
        vault_redact(err, errlen, vc->token);
    resp_free(&r);
    free(loc);
    return rc;
}
