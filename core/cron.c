/*
 * cron.c - cron expression parser and next-fire computation (see cron.h).
 *
 * An expression is a set of bitmasks, one per field, so that "does minute
 * 17 match" is a shift and "the next matching minute at or after 17" is one
 * count-trailing-zeros. cron_next never walks minute by minute: it searches
 * wall-clock time field by field (next matching month, then day, hour,
 * minute, second) and converts the result to UTC through the zone's spans
 * (intervals of constant UTC offset, tz.h). Walking spans in UTC order is
 * what makes the daylight-saving rules exact: inside a span local time is
 * UTC plus a constant, so the first matching local time in the span is the
 * first fire in it; a gap is the jump at a span's start when the offset
 * grows; an overlap is the stretch at a span's start whose wall-clock times
 * the previous span already showed.
 */
#include "cron.h"

#include "util.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    CRON_F_DOM_STAR = 1,  /* day-of-month starts with '*' */
    CRON_F_DOW_STAR = 2,  /* day-of-week starts with '*' */
    CRON_F_DOM_LAST = 4,  /* 'L' in day-of-month */
    CRON_F_DOM_LASTW = 8, /* 'LW' in day-of-month */
    CRON_F_FIXED = 16,    /* fixed-time job: no '*' in minute nor hour */
    CRON_F_NEVER = 32,    /* the calendar part never matches */
};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };

typedef struct field_spec {
    const char *name;
    int lo, hi;                /* accepted values */
    int step_hi;               /* largest step */
    const char *const *names;  /* 3-letter names for lo.., or NULL */
    const char *valid;         /* what the user may write, for messages */
} field_spec;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const field_spec fields[] = {
    [F_SEC] = {"second", 0, 59, 60, NULL, "0-59"},
    [F_MIN] = {"minute", 0, 59, 60, NULL, "0-59"},
    [F_HOUR] = {"hour", 0, 23, 24, NULL, "0-23"},
    [F_DOM] = {"day-of-month", 1, 31, 31, NULL, "1-31"},
    [F_MON] = {"month", 1, 12, 12, month_names, "1-12 or JAN-DEC"},
    [F_DOW] = {"day-of-week", 0, 7, 7, day_names, "0-7 or SUN-SAT"},
};

static const struct {
    const char *name, *text;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* ---- parsing ------------------------------------------------------------- */

typedef struct parser {
    const char *text;  /* the expression as the user wrote it */
    char *err;
    size_t errlen;
    cron_expr *e;
    int field;         /* F_* being parsed */
    uint64_t bits;     /* the plain values of the field being parsed */
} parser;

/* Report an error in the current field with carets under text[pos, pos+len).
 * Returns -1. */
static int fail_at(parser *ps, size_t pos, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(parser *ps, size_t pos, size_t len, const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    if (ps->field >= 0)
        sb_printf(&sb, "invalid %s field: ", fields[ps->field].name);
    else
        sb_append(&sb, "invalid cron expression: ");
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    sb_append(&sb, "\n  ");
    for (const char *p = ps->text; *p; p++) /* keep the caret aligned */
        sb_appendn(&sb, isspace((unsigned char)*p) || iscntrl((unsigned char)*p) ? " " : p, 1);
    sb_append(&sb, "\n  ");
    for (size_t i = 0; i < pos; i++)
        sb_append(&sb, " ");
    for (size_t i = 0; i < (len ? len : 1); i++)
        sb_append(&sb, "^");
    set_err(ps->err, ps->errlen, "%s", sb.buf);
    sb_free(&sb);
    return -1;
}

static size_t off(const parser *ps, const char *p)
{
    return (size_t)(p - ps->text);
}

/* The name a mistyped one was probably meant to be ("MONDAY", "june" ->
 * MON, JUN), or NULL. */
static const char *closest_name(const char *p, size_t n, const char *const *names)
{
    char up[16];
    if (n >= sizeof up)
        return NULL;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)toupper((unsigned char)p[i]);
    up[n] = '\0';
    for (int i = 0; names[i]; i++) {
        if (n > 3 && strncmp(up, names[i], 3) == 0)
            return names[i];
        /* one wrong letter; closest_word would allow two, too loose for 3 */
        int wrong = 0;
        for (size_t k = 0; n == 3 && k < 3; k++)
            wrong += up[k] != names[i][k];
        if (n == 3 && wrong == 1)
            return names[i];
    }
    return NULL;
}

/* Read a number or a name at p (stopping at end). On success stores the
 * value and where it stopped. A day-of-week name may be followed directly by
 * 'L' ("FRIL"), which is left unread. */
static int parse_value(parser *ps, const char *p, const char *end, int *val, const char **next)
{
    const field_spec *f = &fields[ps->field];
    const char *q = p;
    if (isdigit((unsigned char)*q)) {
        long v = 0;
        for (; q < end && isdigit((unsigned char)*q); q++)
            v = v < 100000 ? v * 10 + (*q - '0') : v;
        if (v < f->lo || v > f->hi)
            return fail_at(ps, off(ps, p), (size_t)(q - p), "%.*s is out of range %d-%d",
                           (int)(q - p), p, f->lo, f->hi);
        *val = (int)v;
        *next = q;
        return 0;
    }
    while (q < end && isalpha((unsigned char)*q))
        q++;
    size_t n = (size_t)(q - p);
    if (n == 0)
        return fail_at(ps, off(ps, p), 1, "unexpected '%c': expected %s", *p, f->valid);
    bool name_then_l = n == 4 && ps->field == F_DOW && toupper((unsigned char)p[3]) == 'L';
    if (f->names && (n == 3 || name_then_l)) {
        for (int i = 0; f->names[i]; i++) {
            if (strncasecmp(p, f->names[i], 3) == 0) {
                *val = f->lo + i;
                *next = p + 3;
                return 0;
            }
        }
    }
    if (f->names) {
        char hint[32] = "";
        const char *near = closest_name(p, n, f->names);
        if (near)
            snprintf(hint, sizeof hint, " (did you mean %s?)", near);
        return fail_at(ps, off(ps, p), n, "%.*s is not a %s name%s: expected %s", (int)n, p,
                       ps->field == F_MON ? "month" : "weekday", hint, f->valid);
    }
    return fail_at(ps, off(ps, p), n, "%.*s is not a number: expected %s", (int)n, p, f->valid);
}

static int parse_step(parser *ps, const char *p, const char *end, int *step, const char **next)
{
    const field_spec *f = &fields[ps->field];
    const char *q = p;
    long v = 0;
    for (; q < end && isdigit((unsigned char)*q); q++)
        v = v < 100000 ? v * 10 + (*q - '0') : v;
    if (q == p)
        return fail_at(ps, off(ps, p - 1), (size_t)(end - p) + 1,
                       "'/' must be followed by a step, e.g. */5");
    if (v < 1 || v > f->step_hi)
        return fail_at(ps, off(ps, p), (size_t)(q - p), "step %.*s is out of range 1-%d",
                       (int)(q - p), p, f->step_hi);
    *step = (int)v;
    *next = q;
    return 0;
}

static void set_range(parser *ps, int lo, int hi, int step)
{
    for (int v = lo; v <= hi; v += step)
        ps->bits |= 1ULL << (ps->field == F_DOW && v == 7 ? 0 : v);
}

/* "L", "LW" and "nW" in day-of-month. Returns 1 when handled, 0 when the
 * item is not one of them, -1 on error. */
static int parse_dom_special(parser *ps, const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if (n == 1 && toupper((unsigned char)*p) == 'L') {
        ps->e->flags |= CRON_F_DOM_LAST;
        return 1;
    }
    if (n == 2 && strncasecmp(p, "LW", 2) == 0) {
        ps->e->flags |= CRON_F_DOM_LASTW;
        return 1;
    }
    if (n < 2 || toupper((unsigned char)end[-1]) != 'W')
        return 0;
    int v;
    const char *q;
    if (parse_value(ps, p, end - 1, &v, &q) < 0)
        return -1;
    if (q != end - 1)
        return fail_at(ps, off(ps, p), n, "W needs one day before it, e.g. 15W");
    ps->e->dom_w |= 1u << v;
    return 1;
}

/* "dL" and "d#n" in day-of-week, d a number or name. Returns 1 when handled,
 * 0 when the item is not one of them, -1 on error. */
static int parse_dow_special(parser *ps, const char *p, const char *end)
{
    const char *hash = memchr(p, '#', (size_t)(end - p));
    bool last = end - p >= 2 && toupper((unsigned char)end[-1]) == 'L';
    if (!hash && !last)
        return 0;
    int w, nth = 6; /* 6: last */
    const char *q;
    const char *vend = hash ? hash : end - 1;
    if (parse_value(ps, p, vend, &w, &q) < 0)
        return -1;
    if (q != vend)
        return fail_at(ps, off(ps, p), (size_t)(end - p),
                       "%.*s: expected a weekday before %s, e.g. %s", (int)(end - p), p,
                       hash ? "#" : "L", hash ? "5#3" : "5L");
    if (hash) {
        const char *h = hash + 1;
        if (end - h != 1 || *h < '1' || *h > '5')
            return fail_at(ps, off(ps, h), end > h ? (size_t)(end - h) : 1,
                           "#%.*s: the occurrence after # must be 1-5", (int)(end - h), h);
        nth = *h - '0';
    }
    ps->e->dow_nth |= 1ULL << (6 * (w % 7) + nth - 1);
    return 1;
}

/* Reject L, W and # where they have no meaning, with a useful message. */
static int check_misplaced(parser *ps, const char *p, const char *end)
{
    for (const char *q = p; q < end; q++) {
        char c = (char)toupper((unsigned char)*q);
        if (c == '#' && ps->field != F_DOW)
            return fail_at(ps, off(ps, q), 1, "# is only allowed in the day-of-week field");
        if (c == 'W' && q > p && isdigit((unsigned char)q[-1]) && ps->field != F_DOM)
            return fail_at(ps, off(ps, q), 1, "W is only allowed in the day-of-month field");
        if (c == 'L' && (q == p || isdigit((unsigned char)q[-1])) && ps->field != F_DOM &&
            ps->field != F_DOW)
            return fail_at(ps, off(ps, q), 1,
                           "L is only allowed in the day-of-month and day-of-week fields");
    }
    return 0;
}

/* One list item: "*", "*\/n", "a", "a-b", "a-b/n", "a/n" or a special. */
static int parse_item(parser *ps, const char *p, const char *end)
{
    const field_spec *f = &fields[ps->field];
    if (p == end)
        return fail_at(ps, off(ps, p), 1, "empty list item");
    if (check_misplaced(ps, p, end) < 0)
        return -1;
    int rc = ps->field == F_DOM ? parse_dom_special(ps, p, end)
             : ps->field == F_DOW ? parse_dow_special(ps, p, end) : 0;
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    int lo, hi, step = 1;
    const char *q = p;
    int max = ps->field == F_DOW ? 6 : f->hi; /* "*" and "a/n" stop at Saturday */
    if (*q == '*') {
        lo = f->lo, hi = max, q++;
    } else {
        if (parse_value(ps, q, end, &lo, &q) < 0)
            return -1;
        hi = lo;
        if (q < end && *q == '-') {
            const char *b = q + 1;
            if (b == end)
                return fail_at(ps, off(ps, q), 1, "'-' must be followed by the end of the range");
            if (parse_value(ps, b, end, &hi, &q) < 0)
                return -1;
            if (hi < lo)
                return fail_at(ps, off(ps, p), (size_t)(q - p),
                               "range %.*s is backwards (the start must not exceed the end)",
                               (int)(q - p), p);
        } else if (q < end && *q == '/') {
            hi = max < lo ? lo : max; /* "7/2" in day-of-week: Sunday */
        }
    }
    if (q < end && *q == '/' && parse_step(ps, q + 1, end, &step, &q) < 0)
        return -1;
    if (q != end)
        return fail_at(ps, off(ps, q), (size_t)(end - q), "unexpected '%.*s'",
                       (int)(end - q), q);
    set_range(ps, lo, hi, step);
    return 0;
}

/* A whole field text[start, end): comma-separated items. */
static int parse_field(parser *ps, const char *p, const char *end)
{
    ps->bits = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        if (parse_item(ps, p, item_end) < 0)
            return -1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static void store_field(parser *ps, const char *p, const char *end)
{
    cron_expr *e = ps->e;
    bool star = *p == '*';
    /* fixed-time: neither the minute nor the hour field contains '*' */
    if ((ps->field == F_MIN || ps->field == F_HOUR) && memchr(p, '*', (size_t)(end - p)))
        e->flags &= (uint8_t)~CRON_F_FIXED;
    switch (ps->field) {
    case F_SEC: e->sec = ps->bits; break;
    case F_MIN: e->min = ps->bits; break;
    case F_HOUR: e->hour = (uint32_t)ps->bits; break;
    case F_DOM:
        e->dom = (uint32_t)ps->bits;
        if (star)
            e->flags |= CRON_F_DOM_STAR;
        break;
    case F_MON: e->month = (uint16_t)ps->bits; break;
    default:
        e->dow = (uint8_t)ps->bits;
        if (star)
            e->flags |= CRON_F_DOW_STAR;
        break;
    }
}

static uint32_t month_day_mask(const cron_expr *e, int ndays, int wday1);

/* Can the calendar part match at all? Every month starts on every weekday
 * in some year, and February has 28 and 29 days in some of those, so this
 * covers every case. */
static bool calendar_can_match(const cron_expr *e)
{
    static const int len[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++) {
        if (!(e->month >> m & 1))
            continue;
        for (int w = 0; w < 7; w++)
            if (month_day_mask(e, len[m - 1], w) || (m == 2 && month_day_mask(e, 28, w)))
                return true;
    }
    return false;
}

/* Split text at p into fields and parse them into ps->e. */
static int parse_fields(parser *ps, const char *p)
{
    const char *start[7], *stop[7];
    int n = 0;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *q = p;
        while (*q && !isspace((unsigned char)*q))
            q++;
        if (n == 7)
            break;
        start[n] = p, stop[n++] = q;
        p = q;
    }
    if (n != 5 && n != 6) {
        size_t at = n > 6 ? off(ps, start[6]) : strlen(ps->text);
        size_t len = n > 6 ? strlen(ps->text) - at : 1;
        return fail_at(ps, at, len,
                       "expected 5 fields (minute hour day-of-month month day-of-week) "
                       "or 6 (second minute hour day-of-month month day-of-week), found %d%s",
                       n, n > 6 ? " or more" : "");
    }
    ps->e->flags = CRON_F_FIXED;
    ps->e->sec = 1; /* 5 fields: second 0 */
    for (int i = 0; i < n; i++) {
        ps->field = i + (n == 5);
        if (parse_field(ps, start[i], stop[i]) < 0)
            return -1;
        store_field(ps, start[i], stop[i]);
    }
    return 0;
}

/* Expand a macro; returns its text or NULL (err filled). */
static const char *expand_macro(parser *ps, const char *p)
{
    const char *q = p;
    while (*q && !isspace((unsigned char)*q))
        q++;
    const char *rest = q;
    while (isspace((unsigned char)*rest))
        rest++;
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
        if (strlen(macros[i].name) == (size_t)(q - p) &&
            strncasecmp(p, macros[i].name, (size_t)(q - p)) == 0) {
            if (*rest) {
                fail_at(ps, off(ps, rest), strlen(rest), "%s takes no fields after it",
                        macros[i].name);
                return NULL;
            }
            return macros[i].text;
        }
    }
    static const char *const names[] = {"@yearly", "@annually", "@monthly", "@weekly",
                                        "@daily",  "@midnight", "@hourly",  NULL};
    char word[32], hint[32] = "";
    size_t n = (size_t)(q - p) < sizeof word - 1 ? (size_t)(q - p) : sizeof word - 1;
    for (size_t i = 0; i < n; i++)
        word[i] = (char)tolower((unsigned char)p[i]);
    word[n] = '\0';
    const char *near = closest_word(word, names);
    if (near)
        snprintf(hint, sizeof hint, " (did you mean %s?)", near);
    fail_at(ps, off(ps, p), (size_t)(q - p),
            "unknown macro %.*s%s: expected @yearly, @annually, @monthly, @weekly, @daily, "
            "@midnight or @hourly", (int)(q - p), p, hint);
    return NULL;
}

int cron_parse(const char *text, cron_expr *out, char *err, size_t errlen)
{
    cron_expr e = {0};
    parser ps = {.text = text, .err = err, .errlen = errlen, .e = &e, .field = -1};
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '@') {
        const char *expansion = expand_macro(&ps, p);
        if (!expansion)
            return -1;
        ps.text = expansion;
        p = expansion;
    }
    if (parse_fields(&ps, p) < 0)
        return -1;
    if (!calendar_can_match(&e))
        e.flags |= CRON_F_NEVER;
    *out = e;
    return 0;
}

bool cron_never_fires(const cron_expr *e)
{
    return e->flags & CRON_F_NEVER;
}

bool cron_is_fixed_time(const cron_expr *e)
{
    return e->flags & CRON_F_FIXED;
}

/* ---- matching ------------------------------------------------------------ */

/* The weekday (Monday-Friday) nearest to day d, without leaving the month. */
static int nearest_weekday(int d, int ndays, int wday1)
{
    int w = (wday1 + d - 1) % 7;
    if (w == 6)
        return d > 1 ? d - 1 : d + 2;
    if (w == 0)
        return d < ndays ? d + 1 : d - 2;
    return d;
}

/* Days matched by the day-of-week field's "d#n" and "dL" items. */
static uint32_t nth_weekday_mask(const cron_expr *e, int ndays, int wday1)
{
    uint32_t m = 0;
    for (int w = 0; w < 7; w++) {
        unsigned bits = (unsigned)(e->dow_nth >> (6 * w)) & 63;
        if (!bits)
            continue;
        int first = 1 + (w - wday1 + 7) % 7;
        for (int n = 0; n < 5; n++) {
            int d = first + 7 * n;
            if (bits >> n & 1 && d <= ndays)
                m |= 1u << d;
        }
        if (bits & 32)
            m |= 1u << (first + 7 * ((ndays - first) / 7));
    }
    return m;
}

/* Bit d set for each day d (1..ndays) of a month that matches both day
 * fields; wday1 is the weekday of the 1st. */
static uint32_t month_day_mask(const cron_expr *e, int ndays, int wday1)
{
    uint32_t full = (uint32_t)(((1ULL << ndays) - 1) << 1);
    uint32_t dom = e->dom & full;
    if (e->flags & CRON_F_DOM_LAST)
        dom |= 1u << ndays;
    if (e->flags & CRON_F_DOM_LASTW)
        dom |= 1u << nearest_weekday(ndays, ndays, wday1);
    for (uint32_t w = e->dom_w; w; w &= w - 1) {
        int d = __builtin_ctz(w);
        if (d <= ndays)
            dom |= 1u << nearest_weekday(d, ndays, wday1);
    }
    /* bit k of r: weekday (wday1 + k) % 7 is in the field */
    uint64_t r = ((unsigned)e->dow >> wday1 | (unsigned)e->dow << (7 - wday1)) & 0x7f;
    uint32_t dow = (uint32_t)(((r | r << 7 | r << 14 | r << 21 | r << 28) << 1) & full);
    if (e->dow_nth)
        dow |= nth_weekday_mask(e, ndays, wday1);
    if (e->flags & (CRON_F_DOM_STAR | CRON_F_DOW_STAR))
        return dom & dow;
    return dom | dow;
}

/* Advance (h, mi, s) to the first matching time of day at or after it.
 * Returns false when none is left in the day. */
static bool next_time_of_day(const cron_expr *e, int *h, int *mi, int *s)
{
    for (;;) {
        uint32_t hm = *h > 23 ? 0 : e->hour & (~0u << *h);
        if (!hm)
            return false;
        int nh = __builtin_ctz(hm);
        if (nh != *h)
            *h = nh, *mi = 0, *s = 0;
        uint64_t mm = e->min & (~0ULL << *mi);
        if (!mm) {
            (*h)++, *mi = 0, *s = 0;
            continue;
        }
        int nmi = __builtin_ctzll(mm);
        if (nmi != *mi)
            *mi = nmi, *s = 0;
        uint64_t sm = e->sec & (~0ULL << *s);
        if (sm) {
            *s = __builtin_ctzll(sm);
            return true;
        }
        *s = 0;
        if (++*mi > 59)
            (*h)++, *mi = 0;
    }
}

/* The first matching wall-clock time at or after local (seconds, local
 * time counted as if UTC), or INT64_MAX when none within 400 years. */
static int64_t next_local(const cron_expr *e, int64_t local)
{
    int64_t days = local / 86400 - (local % 86400 < 0);
    int sod = (int)(local - days * 86400);
    int64_t y;
    int m, d, h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
    tz_civil_from_days(days, &y, &m, &d);
    int64_t y_limit = y + 401;
    for (;;) {
        if (!(e->month >> m & 1) || d > 31) {
            if (d > 31)
                m++;
            uint32_t mm = (uint32_t)e->month & (~0u << m) & 0x1ffe;
            if (!mm) {
                if (++y > y_limit)
                    return INT64_MAX;
                mm = e->month;
            }
            m = __builtin_ctz(mm), d = 1, h = mi = s = 0;
        }
        int64_t first = tz_days_from_civil(y, m, 1);
        uint32_t dm = month_day_mask(e, tz_days_in_month(y, m), tz_weekday(first)) & (~0u << d);
        if (!dm) {
            d = 32;
            continue;
        }
        int nd = __builtin_ctz(dm);
        if (nd != d)
            d = nd, h = mi = s = 0;
        if (next_time_of_day(e, &h, &mi, &s))
            return (first + d - 1) * 86400 + h * 3600 + mi * 60 + s;
        d++, h = mi = s = 0;
    }
}

/* Years 1 to 9999: the range the CLI and the store can express. */
#define CRON_MIN_UTC (-62135596800LL)
#define CRON_MAX_UTC 253402300799LL

/* next_local with a memory of its last answer: when a rare expression's
 * next match lies many spans (DST periods) ahead, every span asks for the
 * first match at or after its own start, and the answer is the same; this
 * gives it without searching the calendar again. */
typedef struct local_search {
    const cron_expr *e;
    int64_t from, found; /* found = next_local(e, from); no match in [from, found) */
} local_search;

static int64_t search_from(local_search *s, int64_t from)
{
    if (from < s->from || from > s->found) {
        s->from = from;
        s->found = next_local(s->e, from);
    }
    return s->found;
}

int64_t cron_next(const cron_expr *e, const tz_zone *zone, int64_t after)
{
    if ((e->flags & CRON_F_NEVER) || after < CRON_MIN_UTC || after >= CRON_MAX_UTC)
        return -1;
    bool fixed = e->flags & CRON_F_FIXED;
    local_search ls = {e, INT64_MAX, INT64_MIN};
    int64_t u = after + 1;
    /* The calendar repeats every 400 years and zones past their table follow
     * a yearly rule: no fire in 401 years means none ever (a wildcard job
     * whose every match falls into a gap). */
    int64_t give_up = after + 401LL * 366 * 86400;
    tz_span sp;
    tz_span_at(zone, u, &sp);
    for (;;) {
        /* A fixed-time job whose time fell into the gap that opens this
         * span fires when the gap ends. */
        if (fixed && u == sp.start && sp.offset > sp.prev_offset &&
            search_from(&ls, sp.start + sp.prev_offset) < sp.start + sp.offset)
            return sp.start;
        int64_t local = search_from(&ls, u + sp.offset);
        /* A fixed-time job fires only in the first occurrence of wall-clock
         * times that the previous span already showed (fall back). */
        if (fixed && sp.offset < sp.prev_offset && sp.start != INT64_MIN &&
            local < sp.start + sp.prev_offset)
            local = search_from(&ls, sp.start + sp.prev_offset);
        if (local == INT64_MAX)
            return -1;
        if (sp.end == INT64_MAX || local < sp.end + sp.offset)
            return local - sp.offset <= CRON_MAX_UTC ? local - sp.offset : -1;
        if (sp.end > CRON_MAX_UTC || sp.end > give_up)
            return -1;
        u = sp.end;
        tz_span_at(zone, u, &sp);
    }
}

/* ---- describing ---------------------------------------------------------- */

static const char *const month_words[] = {"", "January", "February", "March", "April",
                                          "May", "June", "July", "August", "September",
                                          "October", "November", "December"};
static const char *const day_words[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

static void append_value(strbuf *sb, int v, const char *const *words)
{
    if (words)
        sb_append(sb, words[v]);
    else
        sb_printf(sb, "%d", v);
}

/* The set bits of a mask in lo..hi as "1,5,9-17"; runs of 3+ as ranges. */
static void append_list(strbuf *sb, uint64_t bits, int lo, int hi, const char *const *words)
{
    bool first = true;
    for (int v = lo; v <= hi; v++) {
        if (!(bits >> v & 1))
            continue;
        int w = v;
        while (w < hi && (bits >> (w + 1) & 1))
            w++;
        if (!first)
            sb_append(sb, words ? ", " : ",");
        first = false;
        append_value(sb, v, words);
        if (w > v) {
            sb_append(sb, w > v + 1 ? "-" : words ? ", " : ",");
            append_value(sb, w, words);
        }
        v = w;
    }
}

static int single_value(uint64_t bits)
{
    return bits && !(bits & (bits - 1)) ? __builtin_ctzll(bits) : -1;
}

/* "at 02:30", "every minute of hour 2", "at minute 0,30 of every hour"... */
static void describe_time(const cron_expr *e, strbuf *sb)
{
    const uint64_t all60 = (1ULL << 60) - 1;
    int s = single_value(e->sec), m = single_value(e->min), h = single_value(e->hour);
    if (s >= 0 && m >= 0 && h >= 0) {
        sb_printf(sb, "at %02d:%02d", h, m);
        if (s)
            sb_printf(sb, ":%02d", s);
        return;
    }
    bool every_hour = e->hour == (1u << 24) - 1;
    if (every_hour && e->min == all60 && (e->sec == all60 || s == 0)) {
        sb_append(sb, s == 0 ? "every minute" : "every second");
        return;
    }
    bool first = true;
    if (e->sec == all60) {
        sb_append(sb, "every second");
        first = false;
    } else if (s != 0) {
        sb_append(sb, "at second ");
        append_list(sb, e->sec, 0, 59, NULL);
        first = false;
    }
    sb_append(sb, first ? "" : " of ");
    if (e->min == all60) {
        sb_append(sb, "every minute");
    } else {
        sb_append(sb, first ? "at minute " : "minute ");
        append_list(sb, e->min, 0, 59, NULL);
    }
    if (every_hour && e->min == all60)
        return; /* "of every minute" says it */
    if (every_hour) {
        sb_append(sb, " of every hour");
    } else {
        sb_append(sb, " of hour ");
        append_list(sb, e->hour, 0, 23, NULL);
    }
}

static void append_item(strbuf *sb, bool *first, const char *text)
{
    sb_append(sb, *first ? "" : ", ");
    sb_append(sb, text);
    *first = false;
}

/* The day-of-month field's matches: "day 1,15 of the month", "the last day
 * of the month", ... Returns false when it matches every day. */
static bool describe_dom(const cron_expr *e, strbuf *sb)
{
    bool first = true;
    if (e->dom == 0xfffffffeu && (e->flags & CRON_F_DOM_STAR))
        return false;
    if (e->dom) {
        append_item(sb, &first, "day ");
        append_list(sb, e->dom, 1, 31, NULL);
    }
    if (e->flags & CRON_F_DOM_LAST)
        append_item(sb, &first, "the last day");
    if (e->flags & CRON_F_DOM_LASTW)
        append_item(sb, &first, "the last weekday");
    if (e->dom_w) {
        append_item(sb, &first, "the weekday nearest day ");
        append_list(sb, e->dom_w, 1, 31, NULL);
    }
    sb_append(sb, " of the month");
    return true;
}

/* The day-of-week field's matches; false when it matches every day. */
static bool describe_dow(const cron_expr *e, strbuf *sb)
{
    static const char *const nth[] = {"1st", "2nd", "3rd", "4th", "5th", "last"};
    bool first = true, monthly = false;
    if (e->dow == 0x7f && (e->flags & CRON_F_DOW_STAR))
        return false;
    if (e->dow) {
        first = false;
        append_list(sb, e->dow, 0, 6, day_words);
    }
    for (int w = 0; w < 7; w++)
        for (int n = 0; n < 6; n++)
            if (e->dow_nth >> (6 * w + n) & 1) {
                append_item(sb, &first, "the ");
                sb_printf(sb, "%s %s", nth[n], day_words[w]);
                monthly = true;
            }
    if (monthly)
        sb_append(sb, " of the month");
    return true;
}

size_t cron_describe(const cron_expr *e, char *buf, size_t len)
{
    strbuf sb = {0}, dom = {0}, dow = {0};
    describe_time(e, &sb);
    bool has_dom = describe_dom(e, &dom), has_dow = describe_dow(e, &dow);
    bool both = (e->flags & (CRON_F_DOM_STAR | CRON_F_DOW_STAR)) != 0;
    if (has_dom && has_dow)
        sb_printf(&sb, " on %s %s %s", dom.buf, both ? "if it is a" : "or on", dow.buf);
    else if (has_dom || has_dow)
        sb_printf(&sb, " on %s", has_dom ? dom.buf : dow.buf);
    else if (single_value(e->sec) >= 0 && single_value(e->min) >= 0 &&
             single_value(e->hour) >= 0)
        sb_append(&sb, " every day");
    if (e->month != 0x1ffe) {
        sb_append(&sb, ", in ");
        append_list(&sb, e->month, 1, 12, month_words);
    }
    size_t n = sb.len;
    if (len)
        snprintf(buf, len, "%s", sb.buf);
    sb_free(&sb);
    sb_free(&dom);
    sb_free(&dow);
    return n;
}

/* ---- the fire heap ------------------------------------------------------- */

void cron_heap_init(cron_heap *h)
{
    memset(h, 0, sizeof *h);
}

void cron_heap_free(cron_heap *h)
{
    free(h->entries);
    free(h->slot);
    cron_heap_init(h);
}

static bool heap_less(const cron_heap_entry *a, const cron_heap_entry *b)
{
    return a->due < b->due || (a->due == b->due && a->id < b->id);
}

static void heap_place(cron_heap *h, size_t i, cron_heap_entry e)
{
    h->entries[i] = e;
    h->slot[e.id] = (uint32_t)i + 1;
}

static void heap_up(cron_heap *h, size_t i)
{
    cron_heap_entry e = h->entries[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&e, &h->entries[parent]))
            break;
        heap_place(h, i, h->entries[parent]);
        i = parent;
    }
    heap_place(h, i, e);
}

static void heap_down(cron_heap *h, size_t i)
{
    cron_heap_entry e = h->entries[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && heap_less(&h->entries[child + 1], &h->entries[child]))
            child++;
        if (!heap_less(&h->entries[child], &e))
            break;
        heap_place(h, i, h->entries[child]);
        i = child;
    }
    heap_place(h, i, e);
}

static void heap_reserve(cron_heap *h, uint32_t id)
{
    if (id >= h->ids) {
        size_t ids = h->ids ? h->ids : 64;
        while (ids <= id)
            ids *= 2;
        h->slot = xrealloc(h->slot, ids * sizeof *h->slot);
        memset(h->slot + h->ids, 0, (ids - h->ids) * sizeof *h->slot);
        h->ids = ids;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->entries = xrealloc(h->entries, h->cap * sizeof *h->entries);
    }
}

void cron_heap_set(cron_heap *h, uint32_t id, int64_t due)
{
    heap_reserve(h, id);
    cron_heap_entry e = {due, id};
    if (h->slot[id]) {
        size_t i = h->slot[id] - 1;
        bool earlier = heap_less(&e, &h->entries[i]);
        h->entries[i] = e;
        if (earlier)
            heap_up(h, i);
        else
            heap_down(h, i);
        return;
    }
    h->entries[h->n] = e;
    heap_up(h, h->n++);
}

bool cron_heap_remove(cron_heap *h, uint32_t id)
{
    if (id >= h->ids || !h->slot[id])
        return false;
    size_t i = h->slot[id] - 1;
    h->slot[id] = 0;
    cron_heap_entry last = h->entries[--h->n];
    if (i == h->n)
        return true;
    bool earlier = heap_less(&last, &h->entries[i]);
    h->entries[i] = last;
    if (earlier)
        heap_up(h, i);
    else
        heap_down(h, i);
    return true;
}

bool cron_heap_peek(const cron_heap *h, cron_heap_entry *top)
{
    if (!h->n)
        return false;
    *top = h->entries[0];
    return true;
}

bool cron_heap_pop(cron_heap *h, cron_heap_entry *top)
{
    if (!cron_heap_peek(h, top))
        return false;
    cron_heap_remove(h, top->id);
    return true;
}

bool cron_heap_get(const cron_heap *h, uint32_t id, int64_t *due)
{
    if (id >= h->ids || !h->slot[id])
        return false;
    *due = h->entries[h->slot[id] - 1].due;
    return true;
}
