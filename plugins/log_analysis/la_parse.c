/*
 * la_parse.c - parsers for PostgreSQL server log records.
 *
 * stderr: a log_line_prefix is compiled once into a list of literal and
 * escape items; a line is an entry start when the prefix matches and is
 * followed by "LEVEL:  ". The common path touches each byte of the prefix
 * once, allocates nothing and returns slices into the caller's line.
 * csvlog: one record (which may span lines inside quotes) is split into its
 * 26 columns; quoted columns are unescaped into a scratch buffer sized
 * before parsing so slices never move. jsonlog: one object per line, read
 * with jansson (jsonlog is the least common destination; speed there is
 * secondary).
 */
#include "la_engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IT_LIT = 0, IT_ESC = 1, IT_Q = 2 };

typedef struct la_item {
    int kind;
    char esc;     /* IT_ESC: the escape letter */
    char *lit;    /* IT_LIT: the literal text */
    size_t litlen;
} la_item;

struct la_prefix {
    la_item *items;
    int n;
};

void la_scratch_free(la_scratch *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = s->len = 0;
}

/* Make room for `need` bytes in s; the buffer may move. Returns 0, -1 on
 * out of memory. */
static int scratch_reserve(la_scratch *s, size_t need)
{
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < need)
        cap *= 2;
    char *b = realloc(s->buf, cap);
    if (b == NULL)
        return -1;
    s->buf = b;
    s->cap = cap;
    return 0;
}

static int add_item(la_prefix *px, int kind, char esc, const char *lit, size_t litlen)
{
    la_item *it = realloc(px->items, sizeof(*it) * (size_t)(px->n + 1));
    if (it == NULL)
        return -1;
    px->items = it;
    la_item *x = &it[px->n++];
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    x->esc = esc;
    if (kind == IT_LIT) {
        x->lit = malloc(litlen + 1);
        if (x->lit == NULL)
            return -1;
        memcpy(x->lit, lit, litlen);
        x->lit[litlen] = '\0';
        x->litlen = litlen;
    }
    return 0;
}

void la_prefix_free(la_prefix *px)
{
    if (px == NULL)
        return;
    for (int i = 0; i < px->n; i++)
        free(px->items[i].lit);
    free(px->items);
    free(px);
}

la_prefix *la_prefix_compile(const char *prefix, char *err, size_t errlen)
{
    la_prefix *px = calloc(1, sizeof(*px));
    char lit[1024];
    size_t ln = 0;
    if (px == NULL)
        goto oom;
    for (const char *s = prefix; *s; s++) {
        if (*s != '%' || s[1] == '%') {
            if (ln + 1 >= sizeof lit) {
                snprintf(err, errlen, "prefix: literal text longer than %zu bytes", sizeof lit - 1);
                goto fail;
            }
            lit[ln++] = *s;
            if (*s == '%')
                s++;
            continue;
        }
        s++;
        /* %-10u style padding: skip the width. */
        while (*s == '-' || (*s >= '0' && *s <= '9'))
            s++;
        if (*s == '\0' || strchr("audrhbpPtmnieclsvxqQ", *s) == NULL) {
            snprintf(err, errlen,
                     "prefix: unknown escape '%%%c' in \"%s\" (valid: %%a %%u %%d %%r %%h %%b %%p "
                     "%%P %%t %%m %%n %%i %%e %%c %%l %%s %%v %%x %%q %%Q %%%%)",
                     *s ? *s : ' ', prefix);
            goto fail;
        }
        if (ln > 0 && add_item(px, IT_LIT, 0, lit, ln) < 0)
            goto oom;
        ln = 0;
        if (add_item(px, *s == 'q' ? IT_Q : IT_ESC, *s, NULL, 0) < 0)
            goto oom;
    }
    if (ln > 0 && add_item(px, IT_LIT, 0, lit, ln) < 0)
        goto oom;
    return px;
oom:
    snprintf(err, errlen, "prefix: out of memory");
fail:
    la_prefix_free(px);
    return NULL;
}

/* The level keyword at p ("LOG:  "), its enum in *level; returns the length
 * consumed including ":  ", or 0 when p does not start with one. */
static size_t parse_level(const char *p, size_t n, int *level)
{
    static const struct {
        const char *kw;
        size_t len;
        int lv;
    } kws[] = {
        {"LOG", 3, LA_LV_LOG},         {"ERROR", 5, LA_LV_ERROR},
        {"STATEMENT", 9, LA_LV_STATEMENT}, {"DETAIL", 6, LA_LV_DETAIL},
        {"HINT", 4, LA_LV_HINT},       {"CONTEXT", 7, LA_LV_CONTEXT},
        {"WARNING", 7, LA_LV_WARNING}, {"FATAL", 5, LA_LV_FATAL},
        {"PANIC", 5, LA_LV_PANIC},     {"NOTICE", 6, LA_LV_NOTICE},
        {"INFO", 4, LA_LV_INFO},       {"QUERY", 5, LA_LV_QUERY},
        {"LOCATION", 8, LA_LV_LOCATION}, {"DEBUG1", 6, LA_LV_DEBUG},
        {"DEBUG2", 6, LA_LV_DEBUG},    {"DEBUG3", 6, LA_LV_DEBUG},
        {"DEBUG4", 6, LA_LV_DEBUG},    {"DEBUG5", 6, LA_LV_DEBUG},
    };
    if (n < 4 || p[0] < 'C' || p[0] > 'W')
        return 0;
    if (n >= 6 && memcmp(p, "LOG:  ", 6) == 0) { /* most lines */
        *level = LA_LV_LOG;
        return 6;
    }
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
        size_t k = kws[i].len;
        if (n >= k + 3 && p[0] == kws[i].kw[0] && memcmp(p, kws[i].kw, k) == 0 && p[k] == ':' &&
            p[k + 1] == ' ' && p[k + 2] == ' ') {
            *level = kws[i].lv;
            return k + 3;
        }
    }
    return 0;
}

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

#define DIG(c) ((unsigned)((c) - '0') < 10u)

int64_t la_parse_ts(const char *p, size_t len)
{
    if (len < 19 || !DIG(p[0]) || !DIG(p[1]) || !DIG(p[2]) || !DIG(p[3]) || p[4] != '-' ||
        !DIG(p[5]) || !DIG(p[6]) || p[7] != '-' || !DIG(p[8]) || !DIG(p[9]) || p[10] != ' ' ||
        !DIG(p[11]) || !DIG(p[12]) || p[13] != ':' || !DIG(p[14]) || !DIG(p[15]) ||
        p[16] != ':' || !DIG(p[17]) || !DIG(p[18]))
        return -1;
#define N2(i) ((p[i] - '0') * 10 + (p[i + 1] - '0'))
    /* consecutive lines share their date: cache its day number per thread */
    static _Thread_local char last_date[10];
    static _Thread_local int64_t last_days = -1;
    int h = N2(11), mi = N2(14), s = N2(17);
    if (h > 23 || mi > 59 || s > 60)
        return -1;
    if (last_days < 0 || memcmp(last_date, p, 10) != 0) {
        int y = N2(0) * 100 + N2(2), mo = N2(5), d = N2(8);
        if (mo < 1 || mo > 12 || d < 1 || d > 31)
            return -1;
        memcpy(last_date, p, 10);
        last_days = days_from_civil(y, mo, d);
    }
#undef N2
    int64_t ms = 0;
    if (len >= 23 && p[19] == '.' && DIG(p[20]) && DIG(p[21]) && DIG(p[22]))
        ms = (p[20] - '0') * 100 + (p[21] - '0') * 10 + (p[22] - '0');
    return ((last_days * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000 + ms;
}

/* Length of a timestamp field ("YYYY-MM-DD HH:MM:SS[.fff][ ZONE]") at p,
 * 0 when there is none; its time in *ts. */
static size_t ts_field_len(const char *p, size_t n, int64_t *ts)
{
    *ts = la_parse_ts(p, n);
    if (*ts < 0)
        return 0;
    size_t i = 19;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && DIG(p[i]))
            i++;
    }
    if (i + 1 < n && p[i] == ' ' &&
        ((p[i + 1] >= 'A' && p[i + 1] <= 'Z') || p[i + 1] == '+' || p[i + 1] == '-')) {
        size_t j = i + 1;
        while (j < n && p[j] != ' ' && p[j] != ']' && p[j] != ',')
            j++;
        i = j;
    }
    return i;
}

/* "%n": seconds since the epoch with milliseconds ("1700000000.250"), as
 * ms; -1 when out of range. */
static int64_t epoch_ms(const char *p, size_t n)
{
    int64_t s = 0, ms = 0, scale = 100;
    size_t i = 0;
    for (; i < n && DIG(p[i]); i++) {
        if (s > 100000000000LL)
            return -1;
        s = s * 10 + (p[i] - '0');
    }
    if (i < n && p[i] == '.')
        for (i++; i < n && DIG(p[i]) && scale > 0; i++, scale /= 10)
            ms += (p[i] - '0') * scale;
    return s * 1000 + ms;
}

/* Where a free-text field ends: before the next literal (the last literal
 * must be followed by a level keyword), else at a space. */
static size_t field_end(const la_prefix *px, int i, const char *p, size_t n, size_t pos)
{
    if (i + 1 < px->n && px->items[i + 1].kind == IT_LIT) {
        const la_item *lit = &px->items[i + 1];
        int last = (i + 2 == px->n);
        size_t from = pos;
        while (from <= n) {
            const char *hit = lit->litlen == 1 ? memchr(p + from, lit->lit[0], n - from)
                                               : memmem(p + from, n - from, lit->lit, lit->litlen);
            if (hit == NULL)
                return (size_t)-1;
            size_t at = (size_t)(hit - p);
            int lv;
            if (!last || parse_level(p + at + lit->litlen, n - at - lit->litlen, &lv))
                return at;
            from = at + 1;
        }
        return (size_t)-1;
    }
    size_t e = pos;
    while (e < n && p[e] != ' ')
        e++;
    return e;
}

static void set_field(la_rec *r, char esc, const char *p, size_t n)
{
    la_str v = {p, n};
    if (n >= 2 && p[0] == '[' && memcmp(p, "[unknown]", n < 9 ? n : 9) == 0 && n == 9)
        v.n = 0;
    switch (esc) {
    case 'u': r->user = v; break;
    case 'd': r->db = v; break;
    case 'a': r->app = v; break;
    case 'h': r->host = v; break;
    case 'e': r->sqlstate = v; break;
    case 'r': {
        const char *par = memchr(p, '(', n);
        r->host = (la_str){p, par ? (size_t)(par - p) : n};
        if (r->host.n == 9 && v.n == 0)
            r->host.n = 0;
        break;
    }
    case 'p': {
        int pid = 0;
        for (size_t i = 0; i < n && i < 9 && DIG(p[i]); i++) /* no overflow */
            pid = pid * 10 + (p[i] - '0');
        r->pid = pid;
        break;
    }
    default: break;
    }
}

int la_parse_stderr_line(const la_prefix *px, const char *p, size_t n, la_rec *r)
{
    memset(r, 0, sizeof(*r));
    r->ts_ms = -1;
    size_t pos = 0;
    for (int i = 0; i < px->n; i++) {
        const la_item *it = &px->items[i];
        if (it->kind == IT_LIT) {
            if (n - pos < it->litlen || memcmp(p + pos, it->lit, it->litlen) != 0)
                return 0;
            pos += it->litlen;
            continue;
        }
        if (it->kind == IT_Q) {
            int lv;
            if (parse_level(p + pos, n - pos, &lv))
                break;
            continue;
        }
        size_t e;
        if (it->esc == 'm' || it->esc == 't' || it->esc == 's') {
            int64_t ts;
            size_t k = ts_field_len(p + pos, n - pos, &ts);
            if (k == 0)
                return 0;
            if (it->esc != 's')
                r->ts_ms = ts;
            e = pos + k;
        } else if (it->esc == 'p' || it->esc == 'l' || it->esc == 'n') {
            e = pos;
            while (e < n && (DIG(p[e]) || (it->esc == 'n' && p[e] == '.')))
                e++;
            if (e == pos && it->esc != 'n')
                return 0;
            if (it->esc == 'n' && e > pos)
                r->ts_ms = epoch_ms(p + pos, e - pos);
        } else {
            e = field_end(px, i, p, n, pos);
            if (e == (size_t)-1)
                return 0;
        }
        set_field(r, it->esc, p + pos, e - pos);
        pos = e;
    }
    size_t k = parse_level(p + pos, n - pos, &r->level);
    if (k == 0)
        return 0;
    r->msg = (la_str){p + pos + k, n - pos - k};
    return 1;
}

/* ---- csvlog ---- */

size_t la_csv_record_len(const char *p, size_t len)
{
    int inq = 0;
    size_t i = 0;
    while (i < len) {
        if (!inq) {
            const char *nl = memchr(p + i, '\n', len - i);
            const char *q = memchr(p + i, '"', (nl ? (size_t)(nl - p) : len) - i);
            if (q == NULL)
                return nl ? (size_t)(nl - p) + 1 : 0;
            i = (size_t)(q - p) + 1;
            inq = 1;
        } else {
            const char *q = memchr(p + i, '"', len - i);
            if (q == NULL)
                return 0;
            i = (size_t)(q - p) + 1;
            inq = 0;
        }
    }
    return 0;
}

int la_parse_csv_record(const char *p, size_t len, la_scratch *sc, la_rec *r)
{
    la_str f[26];
    int nf = 0;
    memset(r, 0, sizeof(*r));
    r->ts_ms = -1;
    while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (scratch_reserve(sc, len + 1) < 0)
        return 0;
    sc->len = 0;
    size_t i = 0;
    while (nf < 26) {
        if (i < len && p[i] == '"') {
            char *out = sc->buf + sc->len;
            size_t o = 0;
            i++;
            for (;;) {
                if (i >= len)
                    return 0;
                if (p[i] == '"') {
                    if (i + 1 < len && p[i + 1] == '"') {
                        out[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                out[o++] = p[i++];
            }
            f[nf++] = (la_str){out, o};
            sc->len += o;
        } else {
            const char *c = memchr(p + i, ',', len - i);
            size_t e = c ? (size_t)(c - p) : len;
            f[nf++] = (la_str){p + i, e - i};
            i = e;
        }
        if (i >= len)
            break;
        if (p[i] != ',')
            return 0;
        i++;
    }
    if (nf < 23)
        return 0;
    r->ts_ms = la_parse_ts(f[0].p, f[0].n);
    if (r->ts_ms < 0)
        return 0;
    r->user = f[1];
    r->db = f[2];
    set_field(r, 'p', f[3].p, f[3].n);
    set_field(r, 'r', f[4].p, f[4].n);
    const char *colon = memchr(f[4].p, ':', f[4].n);
    if (colon && f[4].n && f[4].p[0] != '[')
        r->host.n = (size_t)(colon - f[4].p);
    la_str lv = f[11];
    char kw[16];
    if (lv.n == 0 || lv.n > 10)
        return 0;
    memcpy(kw, lv.p, lv.n);
    memcpy(kw + lv.n, ":  ", 3);
    if (parse_level(kw, lv.n + 3, &r->level) == 0)
        return 0;
    r->sqlstate = f[12];
    r->msg = f[13];
    r->detail = f[14];
    r->statement = f[19];
    r->app = f[22];
    return 1;
}

/* ---- jsonlog ---- */

static la_str json_str(json_t *o, const char *key, la_scratch *sc)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return (la_str){"", 0};
    size_t n = json_string_length(v);
    if (sc->len + n > sc->cap)
        return (la_str){"", 0};
    char *dst = sc->buf + sc->len;
    memcpy(dst, json_string_value(v), n);
    sc->len += n;
    return (la_str){dst, n};
}

int la_parse_json_line(const char *p, size_t len, la_scratch *sc, la_rec *r)
{
    memset(r, 0, sizeof(*r));
    r->ts_ms = -1;
    if (len == 0 || p[0] != '{')
        return 0;
    json_t *o = json_loadb(p, len, JSON_DISABLE_EOF_CHECK, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return 0;
    }
    if (scratch_reserve(sc, len + 16) < 0) {
        json_decref(o);
        return 0;
    }
    sc->len = 0;
    la_str ts = json_str(o, "timestamp", sc);
    r->ts_ms = la_parse_ts(ts.p, ts.n);
    la_str lv = json_str(o, "error_severity", sc);
    char kw[16];
    int ok = r->ts_ms >= 0 && lv.n > 0 && lv.n <= 10;
    if (ok) {
        memcpy(kw, lv.p, lv.n);
        memcpy(kw + lv.n, ":  ", 3);
        ok = parse_level(kw, lv.n + 3, &r->level) > 0;
    }
    if (ok) {
        json_t *pid = json_object_get(o, "pid");
        r->pid = json_is_integer(pid) ? (int)json_integer_value(pid) : 0;
        r->user = json_str(o, "user", sc);
        r->db = json_str(o, "dbname", sc);
        r->app = json_str(o, "application_name", sc);
        r->host = json_str(o, "remote_host", sc);
        r->sqlstate = json_str(o, "state_code", sc);
        r->msg = json_str(o, "message", sc);
        r->detail = json_str(o, "detail", sc);
        r->statement = json_str(o, "statement", sc);
    }
    json_decref(o);
    return ok;
}

size_t la_parse_syslog_header(const char *p, size_t n, int *pid, long *seq, long *chunk)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (n < 20 || p[3] != ' ' || p[6] != ' ' || p[9] != ':' || p[12] != ':' || p[15] != ' ')
        return 0;
    const char *m = memmem(months, 36, p, 3);
    if (m == NULL || (m - months) % 3 != 0)
        return 0;
    const char *h = memmem(p + 16, n - 16, "]: [", 4);
    if (h == NULL)
        return 0;
    const char *b = h;
    while (b > p + 16 && DIG(b[-1]))
        b--;
    if (b == h || b[-1] != '[')
        return 0;
    int v = 0;
    for (const char *q = b; q < h && q < b + 9; q++) /* no overflow */
        v = v * 10 + (*q - '0');
    *pid = v;
    size_t i = (size_t)(h - p) + 4;
    long a = 0, c = 0;
    size_t d0 = i;
    while (i < n && DIG(p[i])) {
        if (i - d0 < 18)
            a = a * 10 + (p[i] - '0');
        i++;
    }
    if (i == d0 || i >= n || p[i] != '-')
        return 0;
    d0 = ++i;
    while (i < n && DIG(p[i])) {
        if (i - d0 < 18)
            c = c * 10 + (p[i] - '0');
        i++;
    }
    if (i == d0 || i + 1 >= n || p[i] != ']' || p[i + 1] != ' ')
        return 0;
    *seq = a;
    *chunk = c;
    return i + 2;
}

int la_detect_format(const char *p, size_t len)
{
    while (len > 0 && (*p == '\n' || *p == '\r' || *p == ' ')) {
        p++;
        len--;
    }
    if (len == 0)
        return LA_FMT_AUTO;
    if (p[0] == '{')
        return LA_FMT_JSON;
    int pid;
    long seq, chunk;
    if (la_parse_syslog_header(p, len, &pid, &seq, &chunk) > 0)
        return LA_FMT_SYSLOG;
    int64_t ts;
    size_t k = ts_field_len(p, len, &ts);
    if (k > 0 && k < len && p[k] == ',')
        return LA_FMT_CSV;
    return LA_FMT_STDERR;
}
