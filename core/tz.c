/*
 * tz.c - TZif reader, zone cache and UTC <-> local conversion (see tz.h).
 *
 * A TZif file (RFC 8536) holds a table of transition instants, each naming
 * a local time type (UTC offset, DST flag, abbreviation), and from version 2
 * on a second, 64-bit copy of that table followed by a footer: a POSIX TZ
 * string ("EST5EDT,M3.2.0,M11.1.0") that says how the zone behaves after
 * the last transition. We keep only what conversions need: the instants at
 * which the UTC offset actually changes and the offset from then on
 * (transitions that change only the abbreviation or the DST flag are
 * dropped, so that adjacent spans always differ in offset and every jump is
 * a real gap or overlap). The footer's transitions are appended to the table
 * up to TZ_PRECOMPUTE_UNTIL so that present-day lookups are one binary
 * search; past that year they are computed from the rule on demand.
 */
#include "tz.h"

#include "util.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_PRECOMPUTE_UNTIL 2100
#define TZ_MAX_OFFSET (26 * 3600)

/* One end of a DST period in a POSIX TZ rule. */
typedef struct tz_rule_date {
    char kind;        /* 'J' (1-365, no Feb 29), 'D' (0-365), 'M' (month.week.day) */
    int16_t day;      /* J / D: the day number */
    int8_t month, week, wday;
    int32_t time;     /* seconds after local midnight, may be <0 or >24h */
} tz_rule_date;

/* The POSIX TZ footer. has_dst false: a fixed offset (std_off). */
typedef struct tz_rule {
    bool present, has_dst;
    int32_t std_off, dst_off; /* seconds east */
    tz_rule_date start, end;  /* start of DST (in std time), end (in DST time) */
} tz_rule;

struct tz_zone {
    char *name;
    size_t n;          /* transitions in the table */
    int64_t *times;    /* ascending */
    int32_t *offs;     /* offs[i] is in effect from times[i] on */
    int32_t initial;   /* before times[0] */
    tz_rule rule;      /* for instants past the table when rule.has_dst */
    struct tz_zone *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static tz_zone *cache;

/* ---- calendar ------------------------------------------------------------ */

/* Howard Hinnant's days_from_civil / civil_from_days: exact for every year,
 * no tables, no loops. */
int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tz_days_in_month(int64_t y, int m)
{
    static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- POSIX TZ rule ------------------------------------------------------- */

/* Parse "[+-]hh[:mm[:ss]]" into seconds; hours up to 167 (TZif v3).
 * Returns the end of the text, or NULL. */
static const char *parse_hms(const char *p, int32_t *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p))
        return NULL;
    long h = 0, mi = 0, s = 0;
    while (isdigit((unsigned char)*p) && h <= 167)
        h = h * 10 + (*p++ - '0');
    if (*p == ':') {
        p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        mi = strtol(p, (char **)&p, 10);
        if (*p == ':') {
            p++;
            if (!isdigit((unsigned char)*p))
                return NULL;
            s = strtol(p, (char **)&p, 10);
        }
    }
    if (h > 167 || mi > 59 || s > 59)
        return NULL;
    *out = (int32_t)(sign * (h * 3600 + mi * 60 + s));
    return p;
}

/* Skip a zone abbreviation: "EST" or "<+0530>". */
static const char *skip_abbr(const char *p)
{
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q && q - p >= 4 ? q + 1 : NULL;
    }
    const char *q = p;
    while (isalpha((unsigned char)*q))
        q++;
    return q - p >= 3 ? q : NULL;
}

static const char *parse_rule_date(const char *p, tz_rule_date *rd)
{
    char *end;
    memset(rd, 0, sizeof *rd);
    rd->time = 7200; /* default 02:00 */
    if (*p == 'M') {
        long m = strtol(p + 1, &end, 10);
        if (*end != '.' || m < 1 || m > 12)
            return NULL;
        long w = strtol(end + 1, &end, 10);
        if (*end != '.' || w < 1 || w > 5)
            return NULL;
        long d = strtol(end + 1, &end, 10);
        if (d < 0 || d > 6)
            return NULL;
        rd->kind = 'M', rd->month = (int8_t)m, rd->week = (int8_t)w, rd->wday = (int8_t)d;
    } else if (*p == 'J' || isdigit((unsigned char)*p)) {
        bool julian = *p == 'J';
        long n = strtol(julian ? p + 1 : p, &end, 10);
        if (julian ? (n < 1 || n > 365) : (n < 0 || n > 365))
            return NULL;
        rd->kind = julian ? 'J' : 'D', rd->day = (int16_t)n;
    } else {
        return NULL;
    }
    p = end;
    if (*p == '/')
        p = parse_hms(p + 1, &rd->time);
    return p;
}

/* Parse a TZif footer. An empty string means "no rule". Returns 0 or -1. */
static int parse_rule(const char *s, tz_rule *r)
{
    memset(r, 0, sizeof *r);
    if (!*s)
        return 0;
    int32_t off;
    const char *p = skip_abbr(s);
    if (!p || !(p = parse_hms(p, &off)))
        return -1;
    r->present = true;
    r->std_off = -off; /* POSIX counts west-positive */
    if (!*p)
        return 0;
    if (!(p = skip_abbr(p)))
        return -1;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, &off)))
            return -1;
        r->dst_off = -off;
    }
    if (!*p) /* POSIX default rule: US rules since 2007 */
        p = ",M3.2.0,M11.1.0";
    if (*p != ',' || !(p = parse_rule_date(p + 1, &r->start)))
        return -1;
    if (*p != ',' || !(p = parse_rule_date(p + 1, &r->end)))
        return -1;
    return *p ? -1 : 0;
}

/* Local midnight (days since epoch) of a rule date in a given year. */
static int64_t rule_day(const tz_rule_date *rd, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    if (rd->kind == 'J')
        return jan1 + rd->day - 1 + (is_leap(y) && rd->day >= 60);
    if (rd->kind == 'D')
        return jan1 + rd->day;
    int64_t first = tz_days_from_civil(y, rd->month, 1);
    int64_t day = first + (rd->wday - tz_weekday(first) + 7) % 7 + 7 * (rd->week - 1);
    while (day >= first + tz_days_in_month(y, rd->month))
        day -= 7;
    return day;
}

/* A transition computed from the rule: the instant and the offset after. */
typedef struct tz_event {
    int64_t at;
    int32_t off;
} tz_event;

/* The rule's transitions for years y0..y0+nyears-1, ascending (stable:
 * a year's end sorts before the next year's start at the same instant),
 * with transitions that change nothing removed. Returns the count. */
static int rule_events(const tz_rule *r, int64_t y0, int nyears, tz_event *ev)
{
    int n = 0;
    for (int64_t y = y0; y < y0 + nyears; y++) {
        ev[n].at = rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
        ev[n++].off = r->dst_off;
        ev[n].at = rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
        ev[n++].off = r->std_off;
    }
    for (int i = 1; i < n; i++) { /* insertion sort, stable */
        tz_event e = ev[i];
        int j = i;
        for (; j > 0 && ev[j - 1].at > e.at; j--)
            ev[j] = ev[j - 1];
        ev[j] = e;
    }
    int m = 0; /* of equal instants the last one wins; drop no-op changes */
    for (int i = 0; i < n; i++) {
        if (i + 1 < n && ev[i + 1].at == ev[i].at)
            continue;
        if (m > 0 && ev[m - 1].off == ev[i].off)
            continue;
        ev[m++] = ev[i];
    }
    return m;
}

/* The span containing t according to the rule alone. */
static void rule_span(const tz_rule *r, int64_t t, tz_span *sp)
{
    int64_t y = 1970 + floor_div(t + r->std_off, 31556952); /* ~year of t */
    tz_event ev[8];
    int n = rule_events(r, y - 2, 4, ev);
    int i = n - 1;
    while (i >= 0 && ev[i].at > t)
        i--;
    /* ev[] covers two years before t, so i >= 1 for any real rule. */
    sp->start = i >= 0 ? ev[i].at : INT64_MIN;
    sp->offset = i >= 0 ? ev[i].off : r->std_off;
    sp->prev_offset = i >= 1 ? ev[i - 1].off : (i == 0 && n > 1 ? ev[n - 1].off : sp->offset);
    sp->end = i + 1 < n ? ev[i + 1].at : INT64_MAX;
}

/* ---- lookups ------------------------------------------------------------- */

const char *tz_name(const tz_zone *zone)
{
    return zone->name;
}

void tz_span_at(const tz_zone *z, int64_t t, tz_span *sp)
{
    if (z->n == 0 || t < z->times[0]) {
        sp->start = INT64_MIN;
        sp->offset = sp->prev_offset = z->initial;
        sp->end = z->n ? z->times[0] : INT64_MAX;
        if (z->n == 0 && z->rule.has_dst)
            rule_span(&z->rule, t, sp);
        return;
    }
    size_t lo = 0, hi = z->n; /* find the last i with times[i] <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (lo + 1 == z->n && z->rule.has_dst) {
        rule_span(&z->rule, t, sp);
        if (sp->start < z->times[lo]) {
            sp->start = z->times[lo];
            sp->prev_offset = lo ? z->offs[lo - 1] : z->initial;
        }
        return;
    }
    sp->start = z->times[lo];
    sp->offset = z->offs[lo];
    sp->prev_offset = lo ? z->offs[lo - 1] : z->initial;
    sp->end = lo + 1 < z->n ? z->times[lo + 1] : INT64_MAX;
}

int tz_offset_at(const tz_zone *zone, int64_t utc_sec)
{
    tz_span sp;
    tz_span_at(zone, utc_sec, &sp);
    return sp.offset;
}

int tz_local_to_utc(const tz_zone *z, int64_t local, int64_t out[2])
{
    /* Any instant with this local time lies within TZ_MAX_OFFSET of it:
     * walk the spans of that window and keep the ones that contain
     * local - offset. */
    int found = 0;
    int64_t gap_end = 0;
    tz_span sp;
    tz_span_at(z, local - TZ_MAX_OFFSET, &sp);
    for (;;) {
        int64_t u = local - sp.offset;
        if (u >= sp.start && u < sp.end && found < 2)
            out[found++] = u;
        /* a gap: the previous span's wall clock stops before local and
         * this one's starts after it */
        if (sp.start != INT64_MIN && sp.offset > sp.prev_offset &&
            local >= sp.start + sp.prev_offset && local < sp.start + sp.offset)
            gap_end = sp.start;
        if (sp.end == INT64_MAX || sp.end > local + TZ_MAX_OFFSET)
            break;
        tz_span_at(z, sp.end, &sp);
    }
    if (found == 0)
        out[0] = gap_end;
    return found;
}

/* ---- loading ------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chr;
} tzif_counts;

static void read_counts(const unsigned char *h, tzif_counts *c)
{
    c->isut = be32(h + 20), c->isstd = be32(h + 24), c->leap = be32(h + 28);
    c->time = be32(h + 32), c->type = be32(h + 36), c->chr = be32(h + 40);
}

static size_t block_size(const tzif_counts *c, int tsize)
{
    return (size_t)c->time * (size_t)(tsize + 1) + (size_t)c->type * 6 + c->chr +
           (size_t)c->leap * (size_t)(tsize + 4) + c->isstd + c->isut;
}

/* Append a transition unless it changes nothing. One at the same instant
 * as the last replaces it (a rule's end of DST and next start can
 * coincide: permanent DST). */
static void push_transition(tz_zone *z, size_t *cap, int64_t at, int32_t off)
{
    if (z->n && at == z->times[z->n - 1]) {
        z->n--;
        push_transition(z, cap, at, off);
        return;
    }
    int32_t cur = z->n ? z->offs[z->n - 1] : z->initial;
    if (off == cur || (z->n && at < z->times[z->n - 1]))
        return;
    if (z->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        z->times = xrealloc(z->times, *cap * sizeof *z->times);
        z->offs = xrealloc(z->offs, *cap * sizeof *z->offs);
    }
    z->times[z->n] = at;
    z->offs[z->n++] = off;
}

/* Add the rule's transitions after the table, up to TZ_PRECOMPUTE_UNTIL. */
static void extend_with_rule(tz_zone *z, size_t *cap)
{
    int64_t last = z->n ? z->times[z->n - 1] : 0;
    int64_t y0, y;
    int m, d;
    tz_civil_from_days(floor_div(last, 86400), &y0, &m, &d);
    for (y = y0; y <= TZ_PRECOMPUTE_UNTIL; y++) {
        tz_event ev[4];
        int n = rule_events(&z->rule, y, 1, ev);
        for (int i = 0; i < n; i++)
            if (ev[i].at > last)
                push_transition(z, cap, ev[i].at, ev[i].off);
    }
}

/* Parse the TZif image into z. Returns 0, or -1 with a reason in err. */
static int parse_tzif(tz_zone *z, const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    tzif_counts c;
    if (len < 44 || memcmp(buf, "TZif", 4) != 0)
        return set_err(err, errlen, "not a TZif file");
    read_counts(buf, &c);
    const unsigned char *p = buf + 44;
    int tsize = 4;
    if (buf[4] >= '2') { /* skip the 32-bit block; use the 64-bit one */
        size_t skip = block_size(&c, 4);
        if (len - 44 < skip + 44 || memcmp(p + skip, "TZif", 4) != 0)
            return set_err(err, errlen, "truncated TZif file");
        read_counts(p + skip, &c);
        p += skip + 44;
        tsize = 8;
    }
    if (c.leap)
        return set_err(err, errlen, "zone counts leap seconds, which is not supported "
                                    "(use the zone without the right/ prefix)");
    if (c.type == 0 || c.type > 256 || c.chr == 0)
        return set_err(err, errlen, "corrupt TZif header");
    size_t need = block_size(&c, tsize);
    if ((size_t)(buf + len - p) < need)
        return set_err(err, errlen, "truncated TZif file");
    const unsigned char *idx = p + (size_t)c.time * (size_t)tsize;
    const unsigned char *types = idx + c.time;
    for (uint32_t i = 0; i < c.type; i++) {
        int32_t off = (int32_t)be32(types + 6 * i);
        if (off <= -TZ_MAX_OFFSET || off >= TZ_MAX_OFFSET)
            return set_err(err, errlen, "corrupt TZif file (offset %d)", (int)off);
    }
    z->initial = (int32_t)be32(types);
    size_t cap = 0;
    for (uint32_t i = 0; i < c.time; i++) {
        int64_t at = tsize == 8 ? be64(p + 8 * (size_t)i) : (int32_t)be32(p + 4 * (size_t)i);
        if (idx[i] >= c.type)
            return set_err(err, errlen, "corrupt TZif file (type index)");
        push_transition(z, &cap, at, (int32_t)be32(types + 6 * idx[i]));
    }
    if (tsize == 8) {
        const char *foot = (const char *)p + need;
        const char *end = (const char *)buf + len;
        if (foot < end && *foot == '\n') {
            char rule[256];
            size_t n = 0;
            for (foot++; foot < end && *foot != '\n' && n + 1 < sizeof rule; foot++)
                rule[n++] = *foot;
            rule[n] = '\0';
            if (parse_rule(rule, &z->rule) < 0)
                return set_err(err, errlen, "unsupported TZ rule \"%s\" in footer", rule);
        }
    }
    if (z->rule.has_dst)
        extend_with_rule(z, &cap);
    else if (z->rule.present)
        push_transition(z, &cap, z->n ? z->times[z->n - 1] + 1 : INT64_MIN + 1, z->rule.std_off);
    return 0;
}

static bool valid_zone_name(const char *name)
{
    if (!*name || *name == '/' || strlen(name) > 200 || strstr(name, ".."))
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-.", *p))
            return false;
    return true;
}

static void zone_free(tz_zone *z)
{
    free(z->name);
    free(z->times);
    free(z->offs);
    free(z);
}

/* Build a zone from the tzdata file. Returns a new zone or NULL. */
static tz_zone *zone_read(const char *name, char *err, size_t errlen)
{
    tz_zone *z = xcalloc(1, sizeof *z);
    z->name = xstrdup(name);
    if (strcmp(name, "UTC") == 0)
        return z;
    if (!valid_zone_name(name)) {
        set_err(err, errlen, "invalid time zone name \"%s\": use an IANA name such as "
                             "Europe/Berlin, America/New_York or UTC", name);
        goto fail;
    }
    const char *dir = getenv("TZDIR");
    char path[512], why[256];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    size_t len;
    char *buf = read_file(path, &len, why, sizeof why);
    if (!buf) {
        set_err(err, errlen, "unknown time zone \"%s\" (%s): use an IANA name such as "
                             "Europe/Berlin, America/New_York or UTC", name, why);
        goto fail;
    }
    int rc = parse_tzif(z, (const unsigned char *)buf, len, why, sizeof why);
    free(buf);
    if (rc < 0) {
        set_err(err, errlen, "time zone \"%s\": %s: %s", name, path, why);
        goto fail;
    }
    return z;
fail:
    zone_free(z);
    return NULL;
}

const tz_zone *tz_load(const char *name, char *err, size_t errlen)
{
    if (!name)
        name = "UTC";
    pthread_mutex_lock(&cache_lock);
    tz_zone *z = cache;
    while (z && strcmp(z->name, name) != 0)
        z = z->next;
    if (!z) {
        /* Reading under the lock keeps "one name, one object" simple; a
         * zone is loaded once per process, so contention does not matter. */
        z = zone_read(name, err, errlen);
        if (z) {
            z->next = cache;
            cache = z;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return z;
}

void tz_unload_all(void)
{
    pthread_mutex_lock(&cache_lock);
    while (cache) {
        tz_zone *next = cache->next;
        zone_free(cache);
        cache = next;
    }
    pthread_mutex_unlock(&cache_lock);
}
