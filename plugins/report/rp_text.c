/*
 * rp_text.c - small text helpers shared by the renderers: a growable
 * string that records an allocation failure instead of aborting, HTML and
 * Markdown escaping, and the formatting of durations and deltas.
 */
#include "rp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(rp_buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void rp_putn(rp_buf *b, const char *s, size_t n)
{
    if (!grow(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void rp_put(rp_buf *b, const char *s)
{
    rp_putn(b, s, strlen(s));
}

void rp_printf(rp_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        rp_putn(b, small, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rp_put_html(rp_buf *b, const char *s)
{
    if (!s)
        return;
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '&'    ? "&amp;"
                          : *s == '<'  ? "&lt;"
                          : *s == '>'  ? "&gt;"
                          : *s == '"'  ? "&quot;"
                          : *s == '\'' ? "&#39;"
                                       : NULL;
        if (!rep)
            continue;
        rp_putn(b, run, (size_t)(s - run));
        rp_put(b, rep);
        run = s + 1;
    }
    rp_putn(b, run, (size_t)(s - run));
}

void rp_put_md_cell(rp_buf *b, const char *s, size_t max)
{
    if (!s)
        return;
    size_t n = 0;
    for (; *s; s++, n++) {
        if (max && n >= max && (*s & 0xC0) != 0x80) { /* never inside a UTF-8 sequence */
            rp_put(b, "…");
            return;
        }
        if (*s == '|')
            rp_put(b, "\\|");
        else if (*s == '\n' || *s == '\r' || *s == '\t')
            rp_put(b, " ");
        else
            rp_putn(b, s, 1);
    }
}

void rp_buf_free(rp_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void rp_fmt_ms(double ms, char *out, size_t len)
{
    if (ms < 0 || isnan(ms))
        snprintf(out, len, "-");
    else if (ms < 1000)
        snprintf(out, len, "%.0f ms", ms);
    else if (ms < 60000)
        snprintf(out, len, "%.2f s", ms / 1000);
    else if (ms < 3600000)
        snprintf(out, len, "%.1f min", ms / 60000);
    else
        snprintf(out, len, "%.1f h", ms / 3600000);
}

void rp_fmt_delta(json_int_t d, char *out, size_t len)
{
    snprintf(out, len, d > 0 ? "+%lld" : "%lld", (long long)d);
}

json_int_t rp_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_number_value(v);
}

double rp_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : -1;
}

const char *rp_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

char *rp_value_text(const json_t *v)
{
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (!v)
        return strdup("");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

char *rp_keys_text(const json_t *v)
{
    if (!json_is_object(v))
        return rp_value_text(v);
    rp_buf b = {0};
    rp_put(&b, "");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        rp_printf(&b, "%s%s", b.len ? ", " : "", k);
    }
    if (b.oom) {
        rp_buf_free(&b);
        return NULL;
    }
    return b.s;
}

const char *rp_fmt_time(const char *iso, bool seconds, char *out, size_t len)
{
    /* "2026-11-21T13:00:00+05" -> "2026-11-21 13:00:00" (or "... 13:00") */
    size_t n = strlen(iso);
    if (n < 19 || iso[10] != 'T') {
        snprintf(out, len, "%s", iso);
        return out;
    }
    snprintf(out, len, "%.10s %.*s", iso, seconds ? 8 : 5, iso + 11);
    return out;
}
