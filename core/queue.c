/*
 * queue.c - the part of the queue that does not depend on a backend: URL
 * parsing, choosing the backend, argument checks, the dispatch of every
 * operation through the backend's ops table, and the retry back-off.
 */
#include "queue.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* ---- URLs -------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string; NULL on a bad escape. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

const char *queue_url_redact(const char *url, char *buf, size_t len)
{
    const char *scheme = url ? strstr(url, "://") : NULL;
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (!url)
        snprintf(buf, len, "memory:");
    else if (!colon)
        snprintf(buf, len, "%s", url);
    else
        snprintf(buf, len, "%.*s:***%s", (int)(colon - url), url, at);
    return buf;
}

/* Parse "user:pass" (either part may be empty) into u. */
static int parse_userinfo(const char *s, size_t n, queue_url *u)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (ulen > 0 && !(u->user = pct_decode(s, ulen)))
        return -1;
    if (colon && !(u->password = pct_decode(colon + 1, n - ulen - 1)))
        return -1;
    if (!colon && u->user) { /* "redis://secret@host": a bare word is a password */
        u->password = u->user;
        u->user = NULL;
    }
    return 0;
}

static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    if (n == 0 || n > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_tcp(const char *rest, queue_url *u, const char *shown, char *err, size_t errlen)
{
    const char *end = rest + strcspn(rest, "/?");
    const char *hp = rest;
    const char *at = memchr(rest, '@', (size_t)(end - rest));
    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), u) < 0)
            return set_err(err, errlen, "queue url %s: bad percent-escape in user or password", shown);
        hp = at + 1;
    }
    const char *host_end, *port_at = NULL;
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(end - hp));
        if (!rb)
            return set_err(err, errlen, "queue url %s: missing ']' after an IPv6 address", shown);
        u->host = xstrndup(hp + 1, (size_t)(rb - hp - 1));
        host_end = rb + 1;
        if (host_end < end && *host_end == ':')
            port_at = host_end + 1;
    } else {
        const char *colon = memchr(hp, ':', (size_t)(end - hp));
        host_end = colon ? colon : end;
        u->host = xstrndup(hp, (size_t)(host_end - hp));
        port_at = colon ? colon + 1 : NULL;
    }
    if (!u->host[0])
        return set_err(err, errlen, "queue url %s: no host; expected redis://[user:pass@]host[:port][/db]", shown);
    u->port = 6379;
    if (port_at && parse_int(port_at, (size_t)(end - port_at), 1, 65535, &u->port) < 0)
        return set_err(err, errlen, "queue url %s: port must be a number 1..65535", shown);
    if (*end == '/' && end[1] && parse_int(end + 1, strcspn(end + 1, "?"), 0, 1 << 20, &u->db) < 0)
        return set_err(err, errlen, "queue url %s: the database after '/' must be a number (0, 1, ...)", shown);
    return 0;
}

static int parse_unix(const char *rest, queue_url *u, const char *shown, char *err, size_t errlen)
{
    const char *path = strchr(rest, '/');
    if (!path)
        return set_err(err, errlen, "queue url %s: expected unix://[user:pass@]/path/to/socket[?db=N]", shown);
    if (path > rest) {
        const char *at = memchr(rest, '@', (size_t)(path - rest));
        if (!at || at + 1 != path)
            return set_err(err, errlen, "queue url %s: expected unix://[user:pass@]/path/to/socket[?db=N]", shown);
        if (parse_userinfo(rest, (size_t)(at - rest), u) < 0)
            return set_err(err, errlen, "queue url %s: bad percent-escape in user or password", shown);
    }
    size_t plen = strcspn(path, "?");
    u->path = xstrndup(path, plen);
    const char *q = path + plen;
    if (*q == '?') {
        q++;
        if (strncmp(q, "db=", 3) != 0 || parse_int(q + 3, strlen(q + 3), 0, 1 << 20, &u->db) < 0)
            return set_err(err, errlen, "queue url %s: the only query parameter is db=N (a number)", shown);
    }
    return 0;
}

int queue_url_parse(const char *url, queue_url *out, char *err, size_t errlen)
{
    char shown[512];
    memset(out, 0, sizeof *out);
    if (!url || !url[0] || strcmp(url, "memory:") == 0) {
        out->kind = QUEUE_MEMORY;
        return 0;
    }
    queue_url_redact(url, shown, sizeof shown);
    int rc;
    if (strncmp(url, "redis://", 8) == 0) {
        out->kind = QUEUE_REDIS_TCP;
        rc = parse_tcp(url + 8, out, shown, err, errlen);
    } else if (strncmp(url, "unix://", 7) == 0) {
        out->kind = QUEUE_REDIS_UNIX;
        rc = parse_unix(url + 7, out, shown, err, errlen);
    } else {
        rc = set_err(err, errlen,
                     "queue url %s: unknown scheme; expected redis://[user:pass@]host[:port][/db], "
                     "unix://[user:pass@]/path/to/socket[?db=N] or memory:", shown);
    }
    if (rc < 0)
        queue_url_free(out);
    return rc;
}

void queue_url_free(queue_url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->path);
    free(u->user);
    if (u->password)
        explicit_bzero(u->password, strlen(u->password));
    free(u->password);
    memset(u, 0, sizeof *u);
}

/* ---- Opening and dispatch --------------------------------------------- */

queue *queue_open(const char *url, const char *prefix, char *err, size_t errlen)
{
    queue_url u;
    if (!prefix || !prefix[0])
        prefix = QUEUE_DEFAULT_PREFIX;
    if (strpbrk(prefix, "{}"))
        return set_err(err, errlen, "queue prefix \"%s\": must not contain '{' or '}'", prefix), NULL;
    if (queue_url_parse(url, &u, err, errlen) < 0)
        return NULL;
    queue *q = u.kind == QUEUE_MEMORY ? queue_memory_open(prefix, err, errlen)
                                      : queue_redis_open(&u, prefix, err, errlen);
    queue_url_free(&u);
    return q;
}

void queue_close(queue *q)
{
    if (q)
        q->ops->close(q);
}

queue_kind queue_get_kind(const queue *q)
{
    return q->kind;
}

bool queue_connected(const queue *q)
{
    return q->ops->connected(q);
}

int queue_check_items(const queue_item *items, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const queue_item *it = &items[i];
        if (it->priority < 0 || it->priority >= QUEUE_PRIORITIES)
            return set_err(err, errlen, "queue item %lld: priority %d is out of range 0..9",
                           (long long)it->id, it->priority);
        if (it->attempt < 0)
            return set_err(err, errlen, "queue item %lld: attempt %d must be >= 1",
                           (long long)it->id, it->attempt);
        if (it->payload && strlen(it->payload) > QUEUE_PAYLOAD_MAX)
            return set_err(err, errlen, "queue item %lld: payload of %zu bytes is over the limit of %d",
                           (long long)it->id, strlen(it->payload), QUEUE_PAYLOAD_MAX);
    }
    return 0;
}

int queue_enqueue(queue *q, const queue_item *items, size_t n, char *err, size_t errlen)
{
    if (queue_check_items(items, n, err, errlen) < 0)
        return -1;
    return n ? q->ops->enqueue(q, items, n, 0, err, errlen) : 0;
}

int queue_enqueue_at(queue *q, const queue_item *items, size_t n, int64_t due_ms, char *err,
                     size_t errlen)
{
    if (queue_check_items(items, n, err, errlen) < 0)
        return -1;
    if (due_ms <= 0)
        due_ms = 1; /* "already due"; 0 means "ready now" to the backends */
    return n ? q->ops->enqueue(q, items, n, due_ms, err, errlen) : 0;
}

int queue_fetch(queue *q, queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms,
                char *err, size_t errlen)
{
    if (max <= 0)
        return 0;
    if (lease_ms <= 0)
        return set_err(err, errlen, "queue fetch: lease duration must be positive, not %lld ms",
                       (long long)lease_ms);
    return q->ops->fetch(q, out, max, lease_ms, timeout_ms < 0 ? 0 : timeout_ms, err, errlen);
}

int queue_ack_fetch(queue *q, const queue_lease *acks, size_t n_acks, int *acked,
                    queue_lease *out, int max, int64_t lease_ms, int64_t timeout_ms,
                    char *err, size_t errlen)
{
    int dummy;
    if (!acked)
        acked = &dummy;
    *acked = 0;
    if (max <= 0 || lease_ms <= 0 || !q->ops->ack_fetch) {
        if (n_acks && (*acked = queue_ack(q, acks, n_acks, err, errlen)) < 0)
            return -1;
        return queue_fetch(q, out, max, lease_ms, timeout_ms, err, errlen);
    }
    return q->ops->ack_fetch(q, acks, n_acks, acked, out, max, lease_ms,
                             timeout_ms < 0 ? 0 : timeout_ms, err, errlen);
}

int queue_heartbeat(queue *q, const queue_lease *leases, size_t n, int64_t lease_ms, bool *held,
                    char *err, size_t errlen)
{
    if (lease_ms <= 0)
        return set_err(err, errlen, "queue heartbeat: lease duration must be positive, not %lld ms",
                       (long long)lease_ms);
    return n ? q->ops->heartbeat(q, leases, n, lease_ms, held, err, errlen) : 0;
}

int queue_ack(queue *q, const queue_lease *leases, size_t n, char *err, size_t errlen)
{
    return n ? q->ops->ack(q, leases, n, err, errlen) : 0;
}

int queue_nack(queue *q, const queue_lease *leases, size_t n, const int64_t *delay_ms, char *err,
               size_t errlen)
{
    return n ? q->ops->nack(q, leases, n, delay_ms, err, errlen) : 0;
}

int queue_dead(queue *q, const queue_lease *leases, size_t n, const char *const *errors, char *err,
               size_t errlen)
{
    return n ? q->ops->dead(q, leases, n, errors, err, errlen) : 0;
}

int queue_release(queue *q, const queue_lease *leases, size_t n, char *err, size_t errlen)
{
    return n ? q->ops->release(q, leases, n, err, errlen) : 0;
}

int queue_promote_due(queue *q, char *err, size_t errlen)
{
    return q->ops->promote_due(q, err, errlen);
}

int queue_requeue_expired(queue *q, char *err, size_t errlen)
{
    return q->ops->requeue_expired(q, err, errlen);
}

int queue_stats_get(queue *q, queue_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    return q->ops->stats(q, st, err, errlen);
}

int queue_dead_list(queue *q, queue_dead_entry **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    return q->ops->dead_list(q, out, n, err, errlen);
}

int queue_dead_retry(queue *q, int64_t id, bool all, char *err, size_t errlen)
{
    return q->ops->dead_retry(q, id, all, err, errlen);
}

int queue_dead_purge(queue *q, char *err, size_t errlen)
{
    return q->ops->dead_purge(q, err, errlen);
}

void queue_lease_clear(queue_lease *l)
{
    free(l->buf);
    memset(l, 0, sizeof *l);
}

void queue_leases_clear(queue_lease *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        queue_lease_clear(&l[i]);
}

void queue_dead_list_free(queue_dead_entry *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].error);
        free(list[i].payload);
    }
    free(list);
}

int64_t queue_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Back-off ---------------------------------------------------------- */

/* splitmix64: tiny, good enough for jitter, any seed works. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound] (inclusive). */
static int64_t rng_upto(uint64_t *s, int64_t bound)
{
    if (bound <= 0)
        return 0;
    return (int64_t)(rng_next(s) % ((uint64_t)bound + 1));
}

int64_t queue_backoff_ms(const cfg_retry *policy, int attempt, uint64_t *rng_state)
{
    static _Thread_local uint64_t local_state;
    uint64_t *s = rng_state ? rng_state : &local_state;
    if (*s == 0)
        *s = (uint64_t)queue_wall_us() ^ (uint64_t)(uintptr_t)s;
    int64_t cap = policy->max_delay_ms > 0 ? policy->max_delay_ms : INT64_MAX / 4;
    double mult = policy->multiplier >= 1.0 ? policy->multiplier : 1.0;
    double base = (double)(policy->initial_ms > 0 ? policy->initial_ms : 0);
    if (attempt > 1)
        base *= pow(mult, (double)(attempt - 1));
    int64_t b = (!isfinite(base) || base >= (double)cap) ? cap : (int64_t)base;
    switch (policy->jitter) {
    case JITTER_FULL:
        return rng_upto(s, b);
    case JITTER_EQUAL:
        return b / 2 + rng_upto(s, b - b / 2);
    case JITTER_NONE:
    default:
        return b;
    }
}
