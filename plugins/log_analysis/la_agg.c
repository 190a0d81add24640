/*
 * la_agg.c - aggregation of log records into the figures we report.
 *
 * la_agg_record() is called once per log entry. It dispatches on the level
 * and the first bytes of the message: the common case (a "duration: X ms
 * statement: ..." line) costs a prefix compare, a number parse, one
 * normalization into a reused buffer and one probe of an open-addressing
 * hash of normalized statements keyed by a 64-bit hash. Heap allocation
 * happens only for a new key (a statement, a database, an error class) and
 * when a statement's duration array doubles.
 */
#include "la_agg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocation failure in the engine is fatal: the plugin runs in a
 * recyclable executor process (and la_cli is a test tool). */
static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fputs("log_analysis: out of memory\n", stderr);
        abort();
    }
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ---- string map ---- */

static void smap_grow(la_smap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    la_sent *ne = xrealloc(NULL, ncap * sizeof(*ne));
    memset(ne, 0, ncap * sizeof(*ne));
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].key == NULL)
            continue;
        size_t j = m->e[i].h & (ncap - 1);
        while (ne[j].key != NULL)
            j = (j + 1) & (ncap - 1);
        ne[j] = m->e[i];
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
}

la_sent *la_smap_get(la_smap *m, const char *key, size_t klen)
{
    if (key == NULL)
        key = ""; /* an empty slice of a record may have no pointer */
    if ((m->n + 1) * 4 > m->cap * 3)
        smap_grow(m);
    uint64_t h = la_hash(key, klen);
    size_t j = h & (m->cap - 1);
    while (m->e[j].key != NULL) {
        la_sent *e = &m->e[j];
        if (e->h == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
        j = (j + 1) & (m->cap - 1);
    }
    la_sent *e = &m->e[j];
    e->h = h;
    e->key = xstrndup(key, klen);
    e->klen = klen;
    m->n++;
    return e;
}

void la_smap_free(la_smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->e[i].key);
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static void smap_add(la_smap *m, la_str k, double v0, double v1)
{
    la_sent *e = la_smap_get(m, k.p, k.n);
    e->v[0] += v0;
    e->v[1] += v1;
    if (v1 > e->v[2])
        e->v[2] = v1;
}

/* Add src's numbers to dst's; v[max_at] is a maximum (-1: none). */
static void smap_merge(la_smap *dst, const la_smap *src, int max_at)
{
    for (size_t i = 0; i < src->cap; i++) {
        const la_sent *s = &src->e[i];
        if (s->key == NULL)
            continue;
        la_sent *d = la_smap_get(dst, s->key, s->klen);
        for (int k = 0; k < LA_NV; k++)
            d->v[k] = (k == max_at) ? (s->v[k] > d->v[k] ? s->v[k] : d->v[k]) : d->v[k] + s->v[k];
    }
}

/* ---- small parsing helpers over slices ---- */

static int starts(la_str s, const char *lit, size_t n)
{
    return s.n >= n && memcmp(s.p, lit, n) == 0;
}

static la_str after(la_str s, size_t k)
{
    return k >= s.n ? (la_str){s.p + s.n, 0} : (la_str){s.p + k, s.n - k};
}

/* Find lit in s; returns the slice after it, or an empty slice with p NULL. */
static la_str find_after(la_str s, const char *lit, size_t n)
{
    const char *h = s.n >= n ? memmem(s.p, s.n, lit, n) : NULL;
    if (h == NULL)
        return (la_str){NULL, 0};
    return after(s, (size_t)(h - s.p) + n);
}

/* Durations are kept in integral microseconds (checkpoint times in
 * integral milliseconds) held in doubles: sums of integers below 2^53 are
 * exact, so the totals do not depend on the order in which threads add
 * them up and two runs print the same figures. */
static double micro(double x)
{
    return (double)llround(x * 1000.0);
}

/* A decimal number at the start of s; *used gets its length (0: none). */
static double num(la_str s, size_t *used)
{
    size_t i = 0;
    double v = 0, scale = 1;
    int neg = 0;
    if (i < s.n && s.p[i] == '-') {
        neg = 1;
        i++;
    }
    size_t d0 = i;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9')
        v = v * 10 + (s.p[i++] - '0');
    if (i < s.n && s.p[i] == '.') {
        i++;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
            scale /= 10;
            v += (s.p[i++] - '0') * scale;
        }
    }
    if (used)
        *used = i > d0 ? i : 0;
    return neg ? -v : v;
}

/* The word (up to a space or the end) at the start of s. */
static la_str word(la_str s, char stop)
{
    size_t i = 0;
    while (i < s.n && s.p[i] != ' ' && s.p[i] != stop)
        i++;
    return (la_str){s.p, i};
}

/* The "quoted" text at the start of s (without quotes). */
static la_str quoted(la_str s)
{
    if (s.n == 0 || s.p[0] != '"')
        return (la_str){s.p, 0};
    const char *e = memchr(s.p + 1, '"', s.n - 1);
    return (la_str){s.p + 1, e ? (size_t)(e - s.p - 1) : s.n - 1};
}

static la_sent *hour(la_agg *a, int64_t ts)
{
    int64_t h = ts >= 0 ? ts / 3600000 : -1;
    if (a->hour_e != NULL && a->hour_last == h && a->hour_cap == a->hours.cap)
        return a->hour_e;
    la_sent *e = la_smap_get(&a->hours, (const char *)&h, sizeof h);
    a->hour_last = h;
    a->hour_cap = a->hours.cap;
    a->hour_e = e;
    return e;
}

/* ---- lifecycle ---- */

la_agg *la_agg_new(int top)
{
    la_agg *a = xrealloc(NULL, sizeof(*a));
    memset(a, 0, sizeof(*a));
    a->top = top > 0 ? top : 20;
    a->first_ts = a->last_ts = -1;
    a->slow = xrealloc(NULL, sizeof(la_slow) * (size_t)a->top);
    return a;
}

static void stmt_free(la_stmt *s)
{
    free(s->norm);
    free(s->durs);
    free(s->example);
    free(s->db);
    free(s->user);
    free(s->app);
}

void la_agg_free(la_agg *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->st_cap; i++)
        if (a->st[i].norm)
            stmt_free(&a->st[i]);
    free(a->st);
    for (int i = 0; i < a->nslow; i++) {
        free(a->slow[i].query);
        free(a->slow[i].db);
        free(a->slow[i].user);
        free(a->slow[i].app);
    }
    free(a->slow);
    la_smap *maps[] = {&a->err_stmt, &a->q_dim, &a->q_type, &a->q_db, &a->q_user,
                       &a->q_app, &a->err_state,
                       &a->err_class, &a->err_class_state, &a->lock_acq, &a->lock_wait,
                       &a->ckpt_reason, &a->tmp_stmt, &a->vac_tab, &a->an_tab, &a->conn_db,
                       &a->conn_user, &a->conn_host, &a->conn_dbuser, &a->sess_db,
                       &a->sess_user, &a->sess_app, &a->sess_host, &a->hours};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        la_smap_free(maps[i]);
    free(a->pend_key);
    la_scratch_free(&a->norm);
    la_scratch_free(&a->tmp);
    free(a);
}

/* ---- statements ---- */

static void st_grow(la_agg *a)
{
    size_t ncap = a->st_cap ? a->st_cap * 2 : 256;
    la_stmt *ne = xrealloc(NULL, ncap * sizeof(*ne));
    memset(ne, 0, ncap * sizeof(*ne));
    for (size_t i = 0; i < a->st_cap; i++) {
        if (a->st[i].norm == NULL)
            continue;
        size_t j = a->st[i].h & (ncap - 1);
        while (ne[j].norm != NULL)
            j = (j + 1) & (ncap - 1);
        ne[j] = a->st[i];
    }
    free(a->st);
    a->st = ne;
    a->st_cap = ncap;
    memset(a->shapes, 0, sizeof a->shapes); /* slots moved */
}

static la_stmt *st_get(la_agg *a, const char *norm, size_t n, uint64_t h)
{
    if ((a->st_n + 1) * 2 > a->st_cap)
        st_grow(a);
    size_t j = h & (a->st_cap - 1);
    while (a->st[j].norm != NULL) {
        la_stmt *s = &a->st[j];
        if (s->h == h && s->nlen == n && memcmp(s->norm, norm, n) == 0)
            return s;
        j = (j + 1) & (a->st_cap - 1);
    }
    la_stmt *s = &a->st[j];
    s->h = h;
    s->norm = xstrndup(norm, n);
    s->nlen = n;
    s->type = la_query_type(norm, n);
    s->min = 1e300;
    a->st_n++;
    return s;
}

static void add_dur(la_stmt *s, double ms)
{
    if (s->ndur == s->cdur) {
        s->cdur = s->cdur ? s->cdur * 2 : 4;
        s->durs = xrealloc(s->durs, s->cdur * sizeof(float));
    }
    s->durs[s->ndur++] = (float)ms;
}

/* Order of the slowest list: by duration, then the earlier first. */
static int slower(double ms, int64_t ts, const la_slow *than)
{
    return ms > than->ms || (ms == than->ms && ts < than->ts);
}

static void slow_insert(la_agg *a, double ms, int64_t ts, la_str q, const la_rec *r)
{
    if (a->nslow == a->top && !slower(ms, ts, &a->slow[a->nslow - 1]))
        return;
    if (a->nslow == a->top) {
        la_slow *x = &a->slow[--a->nslow];
        free(x->query);
        free(x->db);
        free(x->user);
        free(x->app);
    }
    int i = a->nslow++;
    while (i > 0 && slower(ms, ts, &a->slow[i - 1])) {
        a->slow[i] = a->slow[i - 1];
        i--;
    }
    a->slow[i] = (la_slow){ms, ts, xstrndup(q.p, q.n), xstrndup(r->db.p, r->db.n),
                           xstrndup(r->user.p, r->user.n), xstrndup(r->app.p, r->app.n)};
}

/*
 * The shape of a raw statement: its bytes with every run of digits (with
 * an optional '-' before it) that follows a character other than a letter,
 * digit, '_', '$' or '-' masked.
 * Those are exactly the runs normalization turns into '?', whatever their
 * value, so two statements of the same shape normalize to the same text
 * and the normalization can be skipped for the second one (pgbench-like
 * workloads repeat a few shapes with different numbers). Statements with
 * '"', '\\' or a block comment can change what precedes a run and are never
 * cached. Returns 0 when the statement must not be cached.
 */
/* Byte classes for shape_hash: 1 digit, 2 needs a closer look. */
static const unsigned char shape_cls[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1, ['"'] = 2, ['\\'] = 2, ['/'] = 2, ['-'] = 2,
};

static int shape_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '$' || c == '-';
}

static uint64_t shape_mix(uint64_t h, const char *p, size_t n)
{
    return (h ^ la_hash(p, n)) * 0x9e3779b97f4a7c15ull;
}

/* The segments between masked runs are hashed 8 bytes at a time (la_hash);
 * the scan itself is one table lookup per byte. */
static uint64_t shape_hash(const char *p, size_t n)
{
    uint64_t h = 0x243f6a8885a308d3ull ^ n;
    size_t seg = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        unsigned k = shape_cls[c];
        if (k == 0) {
            i++;
            continue;
        }
        if (k == 2) {
            if (c == '"' || c == '\\' || (c == '/' && i + 1 < n && p[i + 1] == '*'))
                return 0;
            if (!(c == '-' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9')) {
                i++;
                continue;
            }
        }
        if (i == 0 || shape_word((unsigned char)p[i - 1])) {
            i++;
            continue;
        }
        /* a number normalization turns into '?': mask it */
        h = shape_mix(h, p + seg, i - seg);
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        seg = i;
    }
    h = shape_mix(h, p + seg, n - seg);
    return h ? h : 1;
}

static la_stmt *stmt_for(la_agg *a, la_str q)
{
    uint64_t sh = shape_hash(q.p, q.n);
    la_shape *c = sh ? &a->shapes[sh & (LA_SHAPES - 1)] : NULL;
    if (c != NULL && c->h == sh) {
        a->shape_hits++;
        return &a->st[c->slot];
    }
    size_t n = la_norm_query(q.p, q.n, &a->norm);
    uint64_t h = la_hash(a->norm.buf, n);
    la_stmt *s = st_get(a, a->norm.buf, n, h);
    if (c != NULL) {
        c = &a->shapes[sh & (LA_SHAPES - 1)]; /* st_get may have cleared it */
        c->h = sh;
        c->slot = (size_t)(s - a->st);
    }
    return s;
}

static void on_statement(la_agg *a, const la_rec *r, double ms, la_str q)
{
    la_stmt *s = stmt_for(a, q);
    if (s->count == 0 || (r->ts_ms >= 0 && r->ts_ms < s->first_ts)) {
        free(s->db);
        free(s->user);
        free(s->app);
        s->db = xstrndup(r->db.p, r->db.n);
        s->user = xstrndup(r->user.p, r->user.n);
        s->app = xstrndup(r->app.p, r->app.n);
        s->first_ts = r->ts_ms;
    }
    s->count++;
    s->total += ms;
    if (ms < s->min)
        s->min = ms;
    if (ms > s->max || s->example == NULL || (ms == s->max && r->ts_ms < s->max_ts)) {
        s->max = ms;
        s->max_ts = r->ts_ms;
        free(s->example);
        s->example = xstrndup(q.p, q.n > 4096 ? 4096 : q.n);
    }
    add_dur(s, ms);
    a->q_total++;
    a->q_ms += ms;
    char key[1024];
    size_t tl = strlen(s->type);
    if (tl + r->db.n + r->user.n + r->app.n + 3 <= sizeof key) {
        char *k = key;
        memcpy(k, s->type, tl);
        k += tl;
        *k++ = '\x01';
        if (r->db.n > 0)
            memcpy(k, r->db.p, r->db.n);
        k += r->db.n;
        *k++ = '\x01';
        if (r->user.n > 0)
            memcpy(k, r->user.p, r->user.n);
        k += r->user.n;
        *k++ = '\x01';
        if (r->app.n > 0)
            memcpy(k, r->app.p, r->app.n);
        k += r->app.n;
        smap_add(&a->q_dim, (la_str){key, (size_t)(k - key)}, 1, ms);
    } else {
        smap_add(&a->q_type, (la_str){s->type, tl}, 1, ms);
        smap_add(&a->q_db, r->db, 1, ms);
        smap_add(&a->q_user, r->user, 1, ms);
        smap_add(&a->q_app, r->app, 1, ms);
    }
    la_sent *hr = hour(a, r->ts_ms);
    hr->v[0]++;
    hr->v[1] += ms;
    if (a->nslow < a->top || slower(ms, r->ts_ms, &a->slow[a->nslow - 1]))
        slow_insert(a, ms, r->ts_ms, q, r);
}

/* "duration: X ms  statement: Q" and its execute/bind/parse variants. */
static void on_duration(la_agg *a, const la_rec *r)
{
    la_str m = after(r->msg, 10);
    size_t used;
    double ms = micro(num(m, &used));
    if (used == 0)
        return;
    m = after(m, used);
    if (!starts(m, " ms  ", 5))
        return;
    m = after(m, 5);
    if (starts(m, "statement: ", 11)) {
        on_statement(a, r, ms, after(m, 11));
        return;
    }
    int kind = starts(m, "execute ", 8) ? 1 : starts(m, "bind ", 5) ? 2 : starts(m, "parse ", 6) ? 3 : 0;
    if (kind == 0)
        return;
    la_str q = find_after(m, ": ", 2);
    if (q.p == NULL)
        return;
    if (kind == 1) {
        on_statement(a, r, ms, q);
    } else if (kind == 2) {
        a->bind_n++;
        a->bind_ms += ms;
    } else {
        a->parse_n++;
        a->parse_ms += ms;
    }
}

/* ---- connections, sessions ---- */

static la_str kv(la_str m, const char *key, size_t n)
{
    la_str v = find_after(m, key, n);
    if (v.p == NULL)
        return (la_str){"", 0};
    return word(v, '\n');
}

static void on_conn_received(la_agg *a, const la_rec *r)
{
    la_str h = kv(r->msg, "host=", 5);
    la_pidhost *ph = &a->pidhost[(unsigned)r->pid % LA_PIDHOST];
    ph->pid = r->pid;
    size_t n = h.n < sizeof ph->host - 1 ? h.n : sizeof ph->host - 1;
    memcpy(ph->host, h.p, n);
    ph->host[n] = '\0';
}

static void on_conn_authorized(la_agg *a, const la_rec *r)
{
    la_str user = kv(r->msg, "user=", 5), db = kv(r->msg, "database=", 9);
    la_str host = r->host;
    la_pidhost *ph = &a->pidhost[(unsigned)r->pid % LA_PIDHOST];
    if (host.n == 0 && ph->pid == r->pid)
        host = (la_str){ph->host, strlen(ph->host)};
    a->conn_n++;
    smap_add(&a->conn_db, db, 1, 0);
    smap_add(&a->conn_user, user, 1, 0);
    smap_add(&a->conn_host, host, 1, 0);
    char key[512];
    if (db.n + user.n + 1 < sizeof key) {
        memcpy(key, db.p, db.n);
        key[db.n] = '\x01';
        memcpy(key + db.n + 1, user.p, user.n);
        smap_add(&a->conn_dbuser, (la_str){key, db.n + 1 + user.n}, 1, 0);
    }
    hour(a, r->ts_ms)->v[3]++;
}

/* "disconnection: session time: H:MM:SS.mmm user=U database=D host=H" */
static void on_disconnection(la_agg *a, const la_rec *r)
{
    la_str t = find_after(r->msg, "session time: ", 14);
    if (t.p == NULL)
        return;
    size_t u1, u2, u3;
    double h = num(t, &u1);
    la_str t2 = after(t, u1 + 1);
    double mi = num(t2, &u2);
    la_str t3 = after(t2, u2 + 1);
    double s = num(t3, &u3);
    if (!u1 || !u2 || !u3)
        return;
    double ms = micro(((h * 60 + mi) * 60 + s) * 1000.0);
    la_str user = kv(r->msg, "user=", 5), db = kv(r->msg, "database=", 9);
    la_str host = kv(r->msg, "host=", 5);
    a->sess_n++;
    a->sess_ms += ms;
    smap_add(&a->sess_db, db, 1, ms);
    smap_add(&a->sess_user, user, 1, ms);
    smap_add(&a->sess_app, r->app, 1, ms);
    smap_add(&a->sess_host, host, 1, ms);
}

/* ---- checkpoints ---- */

static void on_ckpt_complete(la_agg *a, const la_rec *r)
{
    static const struct {
        const char *key;
        size_t off;
    } f[] = {
        {"wrote ", offsetof(la_agg, ckpt_buf)},   {"; ", offsetof(la_agg, wal_add)},
        {"added, ", offsetof(la_agg, wal_rem)},   {"removed, ", offsetof(la_agg, wal_rec)},
        {"write=", offsetof(la_agg, ckpt_write)}, {"sync=", offsetof(la_agg, ckpt_sync)},
        {"total=", offsetof(la_agg, ckpt_total)},
    };
    la_str m = r->msg;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        la_str v = find_after(m, f[i].key, strlen(f[i].key));
        if (v.p == NULL)
            return;
        size_t used;
        double x = num(v, &used);
        *(double *)((char *)a + f[i].off) += micro(x);
        m = after(v, used);
    }
}

static void on_ckpt_start(la_agg *a, const la_rec *r, size_t skip)
{
    la_str reason = after(r->msg, skip);
    while (reason.n > 0 && (reason.p[reason.n - 1] == ' ' || reason.p[reason.n - 1] == '\n'))
        reason.n--;
    a->ckpt_n++;
    smap_add(&a->ckpt_reason, reason, 1, 0);
    hour(a, r->ts_ms)->v[4]++;
}

/* ---- temporary files ---- */

/* The normalized statement text, or "" for none; valid until the next
 * normalization. */
static la_str norm_stmt(la_agg *a, la_str stmt)
{
    if (stmt.n == 0)
        return (la_str){"", 0};
    size_t n = la_norm_query(stmt.p, stmt.n, &a->norm);
    return (la_str){a->norm.buf, n};
}

static void tmp_attach(la_agg *a, double size, la_str stmt)
{
    la_str key = norm_stmt(a, stmt);
    la_sent *e = la_smap_get(&a->tmp_stmt, key.p, key.n);
    e->v[0]++;
    e->v[1] += size;
    if (size > e->v[2])
        e->v[2] = size;
}

static void err_attach(la_agg *a, const char *ckey, size_t cklen, la_str stmt)
{
    if (stmt.n == 0)
        return;
    la_str q = norm_stmt(a, stmt);
    char *key = xrealloc(NULL, cklen + 1 + q.n);
    memcpy(key, ckey, cklen);
    key[cklen] = '\x02';
    memcpy(key + cklen + 1, q.p, q.n);
    la_smap_get(&a->err_stmt, key, cklen + 1 + q.n)->v[0]++;
    free(key);
}

/* Close the pending event with stmt (empty: it had none). */
static void pend_close(la_agg *a, la_str stmt)
{
    if (a->pend_kind == 1)
        tmp_attach(a, a->pend_size, stmt);
    else if (a->pend_kind == 2)
        err_attach(a, a->pend_key, a->pend_klen, stmt);
    free(a->pend_key);
    a->pend_key = NULL;
    a->pend_kind = 0;
}

/* Route a record to the pending event. Returns 1 when the record was a
 * line of that event (DETAIL, HINT, CONTEXT, STATEMENT, ...) */
static int pend_take(la_agg *a, const la_rec *r)
{
    if (a->pend_kind == 0)
        return 0;
    if (r->pid == a->pend_pid) {
        switch (r->level) {
        case LA_LV_STATEMENT:
            pend_close(a, r->msg);
            return 1;
        case LA_LV_DETAIL:
        case LA_LV_HINT:
        case LA_LV_CONTEXT:
        case LA_LV_QUERY:
        case LA_LV_LOCATION:
            return 0; /* still the same event: keep waiting */
        default:
            break;
        }
    }
    pend_close(a, (la_str){"", 0});
    return 0;
}

static void on_temp_file(la_agg *a, const la_rec *r)
{
    la_str sz = find_after(r->msg, ", size ", 7);
    if (sz.p == NULL)
        return;
    double size = num(sz, NULL);
    a->tmp_n++;
    a->tmp_bytes += size;
    if (size > a->tmp_max)
        a->tmp_max = size;
    hour(a, r->ts_ms)->v[5]++;
    if (r->statement.n > 0) { /* csvlog, jsonlog */
        tmp_attach(a, size, r->statement);
        return;
    }
    a->pend_kind = 1;
    a->pend_pid = r->pid;
    a->pend_size = size;
}

void la_agg_flush(la_agg *a)
{
    pend_close(a, (la_str){"", 0});
}

/* ---- autovacuum, locks ---- */

static void on_autovacuum(la_agg *a, const la_rec *r, int analyze)
{
    la_str t = find_after(r->msg, "of table ", 9);
    if (t.p == NULL)
        return;
    la_str tab = quoted(t);
    if (analyze) {
        a->an_n++;
        smap_add(&a->an_tab, tab, 1, 0);
    } else {
        a->vac_n++;
        smap_add(&a->vac_tab, tab, 1, 0);
    }
    hour(a, r->ts_ms)->v[7]++;
}

/* "process N still waiting for TYPE on ... after X ms" / "process N
 * acquired TYPE on ... after X ms" */
static void on_process(la_agg *a, const la_rec *r)
{
    la_str m = after(r->msg, 8);
    la_str w = find_after(m, " still waiting for ", 19);
    int acquired = 0;
    if (w.p == NULL) {
        la_str pid = word(m, ' ');
        la_str rest = after(m, pid.n);
        if (!starts(rest, " acquired ", 10))
            return;
        w = after(rest, 10);
        acquired = 1;
    }
    la_str type = word(w, ' ');
    la_str af = find_after(w, " after ", 7);
    double ms = af.p ? micro(num(af, NULL)) : 0;
    if (acquired) {
        smap_add(&a->lock_acq, type, 1, ms);
    } else {
        smap_add(&a->lock_wait, type, 1, ms);
        hour(a, r->ts_ms)->v[6]++;
    }
}

/* ---- errors ---- */

static const char *level_name(int lv)
{
    static const char *const names[LA_LV_COUNT] = {
        "NONE", "DEBUG", "INFO", "NOTICE", "LOG", "WARNING", "ERROR", "FATAL",
        "PANIC", "DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"};
    return lv >= 0 && lv < LA_LV_COUNT ? names[lv] : "NONE";
}

static void on_error(la_agg *a, const la_rec *r)
{
    la_str m = r->msg;
    if (starts(m, "deadlock detected", 17))
        a->deadlocks++;
    else if (starts(m, "canceling statement due to statement timeout", 44))
        a->cancel_timeout++;
    else if (starts(m, "canceling statement due to user request", 39))
        a->cancel_user++;
    else if (starts(m, "canceling statement due to lock timeout", 39))
        a->cancel_lock++;
    size_t n = la_norm_error(m.p, m.n, &a->tmp);
    const char *lv = level_name(r->level);
    size_t ll = strlen(lv);
    /* key: LEVEL \x01 class [\x01 sqlstate] */
    char *key = xrealloc(NULL, ll + n + r->sqlstate.n + 3);
    memcpy(key, lv, ll);
    key[ll] = '\x01';
    memcpy(key + ll + 1, a->tmp.buf, n);
    la_sent *e = la_smap_get(&a->err_class, key, ll + 1 + n);
    e->v[0]++;
    if (r->statement.n > 0) {
        err_attach(a, key, ll + 1 + n, r->statement); /* csvlog, jsonlog */
    } else {
        a->pend_kind = 2;
        a->pend_pid = r->pid;
        a->pend_key = xstrndup(key, ll + 1 + n);
        a->pend_klen = ll + 1 + n;
    }
    if (r->sqlstate.n > 0) {
        key[ll + 1 + n] = '\x01';
        memcpy(key + ll + 2 + n, r->sqlstate.p, r->sqlstate.n);
        la_smap_get(&a->err_class_state, key, ll + 2 + n + r->sqlstate.n)->v[0]++;
        smap_add(&a->err_state, r->sqlstate, 1, 0);
    }
    free(key);
    hour(a, r->ts_ms)->v[2]++;
}

/* ---- dispatch ---- */

static void on_log(la_agg *a, const la_rec *r)
{
    la_str m = r->msg;
    if (m.n < 8)
        return;
    switch (m.p[0]) {
    case 'd':
        if (starts(m, "duration: ", 10))
            on_duration(a, r);
        else if (starts(m, "disconnection: ", 15))
            on_disconnection(a, r);
        break;
    case 'c':
        if (starts(m, "connection received: ", 21))
            on_conn_received(a, r);
        else if (starts(m, "connection authorized: ", 23))
            on_conn_authorized(a, r);
        else if (starts(m, "checkpoint starting: ", 21))
            on_ckpt_start(a, r, 21);
        else if (starts(m, "checkpoint complete: ", 21))
            on_ckpt_complete(a, r);
        else if (starts(m, "checkpoints are occurring too frequently", 40))
            a->ckpt_freq++;
        break;
    case 'r':
        if (starts(m, "restartpoint starting: ", 23))
            a->restart_n++;
        else if (starts(m, "restartpoint complete: ", 23))
            on_ckpt_complete(a, r);
        break;
    case 't':
        if (starts(m, "temporary file: ", 16))
            on_temp_file(a, r);
        break;
    case 'a':
        if (starts(m, "automatic analyze of table ", 27))
            on_autovacuum(a, r, 1);
        else if (starts(m, "automatic vacuum ", 17) || starts(m, "automatic aggressive vacuum ", 28))
            on_autovacuum(a, r, 0);
        break;
    case 'p':
        if (starts(m, "process ", 8))
            on_process(a, r);
        break;
    default:
        break;
    }
}

void la_agg_record(la_agg *a, const la_rec *r)
{
    a->entries++;
    if (r->ts_ms >= 0) {
        if (a->first_ts < 0 || r->ts_ms < a->first_ts)
            a->first_ts = r->ts_ms;
        if (r->ts_ms > a->last_ts)
            a->last_ts = r->ts_ms;
    }
    if (pend_take(a, r)) {
        a->by_level[LA_LV_STATEMENT]++;
        return;
    }
    if (r->level < LA_LV_COUNT)
        a->by_level[r->level]++;
    switch (r->level) {
    case LA_LV_LOG:
        on_log(a, r);
        break;
    case LA_LV_ERROR:
    case LA_LV_FATAL:
    case LA_LV_PANIC:
    case LA_LV_WARNING:
        on_error(a, r);
        break;
    default:
        break;
    }
}

void la_agg_finish(la_agg *a)
{
    la_smap *dst[4] = {&a->q_type, &a->q_db, &a->q_user, &a->q_app};
    for (size_t i = 0; i < a->q_dim.cap; i++) {
        const la_sent *e = &a->q_dim.e[i];
        if (e->key == NULL)
            continue;
        const char *p = e->key, *end = e->key + e->klen;
        for (int d = 0; d < 4; d++) {
            const char *sep = d < 3 ? memchr(p, '\x01', (size_t)(end - p)) : end;
            if (sep == NULL)
                break;
            la_sent *t = la_smap_get(dst[d], p, (size_t)(sep - p));
            t->v[0] += e->v[0];
            t->v[1] += e->v[1];
            if (e->v[2] > t->v[2])
                t->v[2] = e->v[2];
            p = sep + 1;
        }
    }
    la_smap_free(&a->q_dim);
}

void la_agg_unparsed(la_agg *a, size_t nlines)
{
    a->unparsed += nlines;
}

void la_agg_add_input(la_agg *a, uint64_t bytes, uint64_t lines)
{
    a->bytes += bytes;
    a->lines += lines;
}

/* ---- merge ---- */

static void merge_stmt(la_agg *dst, la_stmt *s)
{
    la_stmt *d = st_get(dst, s->norm, s->nlen, s->h);
    if (d->count == 0 || s->first_ts < d->first_ts) {
        free(d->db);
        free(d->user);
        free(d->app);
        d->first_ts = s->first_ts;
        d->db = s->db;
        d->user = s->user;
        d->app = s->app;
        s->db = s->user = s->app = NULL;
    }
    d->count += s->count;
    d->total += s->total;
    if (s->min < d->min)
        d->min = s->min;
    if (s->max > d->max || d->example == NULL || (s->max == d->max && s->max_ts < d->max_ts)) {
        d->max = s->max;
        d->max_ts = s->max_ts;
        free(d->example);
        d->example = s->example;
        s->example = NULL;
    }
    for (size_t i = 0; i < s->ndur; i++)
        add_dur(d, s->durs[i]);
}

void la_agg_merge(la_agg *dst, la_agg *src)
{
    dst->bytes += src->bytes;
    dst->lines += src->lines;
    dst->unparsed += src->unparsed;
    dst->entries += src->entries;
    if (src->first_ts >= 0 && (dst->first_ts < 0 || src->first_ts < dst->first_ts))
        dst->first_ts = src->first_ts;
    if (src->last_ts > dst->last_ts)
        dst->last_ts = src->last_ts;
    for (size_t i = 0; i < src->st_cap; i++)
        if (src->st[i].norm)
            merge_stmt(dst, &src->st[i]);
    dst->q_total += src->q_total;
    dst->shape_hits += src->shape_hits;
    dst->q_ms += src->q_ms;
    dst->bind_n += src->bind_n;
    dst->bind_ms += src->bind_ms;
    dst->parse_n += src->parse_n;
    dst->parse_ms += src->parse_ms;
    for (int i = 0; i < src->nslow; i++) {
        la_slow *s = &src->slow[i];
        la_rec r = {.db = {s->db, strlen(s->db)}, .user = {s->user, strlen(s->user)},
                    .app = {s->app, strlen(s->app)}};
        slow_insert(dst, s->ms, s->ts, (la_str){s->query, strlen(s->query)}, &r);
    }
    for (int i = 0; i < LA_LV_COUNT; i++)
        dst->by_level[i] += src->by_level[i];
    dst->cancel_timeout += src->cancel_timeout;
    dst->cancel_user += src->cancel_user;
    dst->cancel_lock += src->cancel_lock;
    dst->deadlocks += src->deadlocks;
    dst->ckpt_n += src->ckpt_n;
    dst->ckpt_freq += src->ckpt_freq;
    dst->restart_n += src->restart_n;
    dst->ckpt_buf += src->ckpt_buf;
    dst->ckpt_write += src->ckpt_write;
    dst->ckpt_sync += src->ckpt_sync;
    dst->ckpt_total += src->ckpt_total;
    dst->wal_add += src->wal_add;
    dst->wal_rem += src->wal_rem;
    dst->wal_rec += src->wal_rec;
    dst->tmp_n += src->tmp_n;
    dst->tmp_bytes += src->tmp_bytes;
    if (src->tmp_max > dst->tmp_max)
        dst->tmp_max = src->tmp_max;
    dst->vac_n += src->vac_n;
    dst->an_n += src->an_n;
    dst->conn_n += src->conn_n;
    dst->sess_n += src->sess_n;
    dst->sess_ms += src->sess_ms;
    la_smap *d[] = {&dst->err_stmt, &dst->q_dim, &dst->q_type, &dst->q_db, &dst->q_user,
                    &dst->q_app, &dst->err_state,
                    &dst->err_class, &dst->err_class_state, &dst->lock_acq, &dst->lock_wait,
                    &dst->ckpt_reason, &dst->tmp_stmt, &dst->vac_tab, &dst->an_tab,
                    &dst->conn_db, &dst->conn_user, &dst->conn_host, &dst->conn_dbuser,
                    &dst->sess_db, &dst->sess_user, &dst->sess_app, &dst->sess_host,
                    &dst->hours};
    la_smap *s[] = {&src->err_stmt, &src->q_dim, &src->q_type, &src->q_db, &src->q_user,
                    &src->q_app, &src->err_state,
                    &src->err_class, &src->err_class_state, &src->lock_acq, &src->lock_wait,
                    &src->ckpt_reason, &src->tmp_stmt, &src->vac_tab, &src->an_tab,
                    &src->conn_db, &src->conn_user, &src->conn_host, &src->conn_dbuser,
                    &src->sess_db, &src->sess_user, &src->sess_app, &src->sess_host,
                    &src->hours};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        smap_merge(d[i], s[i], d[i] == &dst->hours ? -1 : 2);
}
