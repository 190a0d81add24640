/*
 * test_cron_diff.c - differential tests of the cron engine against an
 * independent brute force written here.
 *
 * The brute force knows nothing of tz.c or cron.c: it steps through UTC
 * second by second (6-field expressions) or minute by minute (5 fields),
 * asks libc's localtime_r (TZ set with setenv) for the wall clock, matches
 * the wall clock against the expression's value sets, which the generator
 * keeps alongside the text it renders, and applies Debian cron's DST rules
 * directly: a wall-clock time already seen is a repeat (fixed-time jobs do
 * not fire again), a forward jump of the wall clock is a gap (fixed-time
 * jobs matching inside it fire once, now). The engine must produce exactly
 * the same instants over each window, which is placed around a real
 * transition of the zone for most cases.
 *
 * Deterministic: the seed is fixed (PGR_CRON_DIFF_SEED overrides it) and
 * printed on failure with the failing case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"
#include "tz.h"

static const char *const zones[] = {
    "America/New_York", "Europe/Berlin",   "Australia/Lord_Howe", "Pacific/Chatham",
    "Asia/Kolkata",     "UTC",             "America/Santiago",    "Europe/Dublin",
    "Africa/Casablanca", "America/Nuuk",   "Asia/Jerusalem",      "America/Havana",
    "Asia/Tehran",      "Australia/Adelaide", "America/St_Johns", "Pacific/Apia",
    "Asia/Gaza",        "Europe/London",   "America/Sao_Paulo",   "Asia/Kathmandu",
    "Antarctica/Troll", "America/Los_Angeles", "Europe/Moscow",   "Africa/Cairo",
};
#define NZONES (sizeof zones / sizeof zones[0])

static uint64_t rng_state, rng_seed;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int rnd_in(int lo, int hi) /* inclusive */
{
    return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

static bool chance(int percent)
{
    return rnd_in(1, 100) <= percent;
}

/* ---- random expressions, kept both as text and as value sets ---------------- */

typedef struct spec {
    bool six, fixed, dom_star, dow_star;
    bool sec[60], min[60], hour[24], dom[32], mon[13], dow[7];
    bool dom_last, dom_lastw, dom_w[32];
    bool dow_nth[7][6]; /* [w][n-1], [w][5] = last */
    char text[640];
} spec;

static const char *const mon_names[] = {"", "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                        "JUL", "AUG", "SEP", "OCT", "NOV", "dec"};
static const char *const dow_names[] = {"sun", "MON", "Tue", "WED", "THU", "FRI", "SAT"};

static void put_value(char *out, int field, int v)
{
    char buf[16];
    if (field == 4 && chance(30))
        snprintf(buf, sizeof buf, "%s", mon_names[v]);
    else if (field == 5 && v < 7 && chance(30))
        snprintf(buf, sizeof buf, "%s", dow_names[v]);
    else
        snprintf(buf, sizeof buf, "%d", v);
    strcat(out, buf);
}

static void mark(bool *set, int field, int v)
{
    set[field == 5 && v == 7 ? 0 : v] = true;
}

/* One plain field (field 0 second ... 5 day-of-week): text and set. */
static void gen_field(char *out, bool *set, int field, int lo, int hi, int star_pct)
{
    int items = chance(star_pct) ? 0 : rnd_in(1, 3);
    int step_hi = field == 5 ? 7 : hi - lo + 1;
    if (items == 0) {
        int step = chance(50) ? 1 : rnd_in(2, step_hi);
        int max = field == 5 ? 6 : hi;
        strcat(out, "*");
        if (step > 1) {
            char buf[16];
            snprintf(buf, sizeof buf, "/%d", step);
            strcat(out, buf);
        }
        for (int v = lo; v <= max; v += step)
            mark(set, field, v);
        return;
    }
    for (int i = 0; i < items; i++) {
        if (i)
            strcat(out, ",");
        int a = rnd_in(lo, hi), kind = rnd_in(0, 2);
        put_value(out, field, a);
        if (kind == 0) {
            mark(set, field, a);
            continue;
        }
        int b = rnd_in(a, hi), step = kind == 2 ? rnd_in(1, step_hi < 10 ? step_hi : 10) : 1;
        strcat(out, "-");
        put_value(out, field, b);
        if (kind == 2) {
            char buf[16];
            snprintf(buf, sizeof buf, "/%d", step);
            strcat(out, buf);
        }
        for (int v = a; v <= b; v += step)
            mark(set, field, v);
    }
}

static void gen_dom(spec *s, char *out)
{
    if (!chance(15)) {
        gen_field(out, s->dom, 3, 1, 31, 75);
        return;
    }
    switch (rnd_in(0, 2)) { /* a special, maybe with a plain day */
    case 0: strcat(out, "L"); s->dom_last = true; break;
    case 1: strcat(out, "LW"); s->dom_lastw = true; break;
    default: {
        int d = rnd_in(1, 31);
        char buf[16];
        snprintf(buf, sizeof buf, "%dW", d);
        strcat(out, buf);
        s->dom_w[d] = true;
    }
    }
    if (chance(30)) {
        int d = rnd_in(1, 31);
        char buf[16];
        snprintf(buf, sizeof buf, ",%d", d);
        strcat(out, buf);
        s->dom[d] = true;
    }
}

static void gen_dow(spec *s, char *out)
{
    if (!chance(15)) {
        gen_field(out, s->dow, 5, 0, 7, 75);
        return;
    }
    int w = rnd_in(0, 7);
    char buf[16];
    if (chance(50)) {
        int n = rnd_in(1, 5);
        snprintf(buf, sizeof buf, "%d#%d", w, n);
        s->dow_nth[w % 7][n - 1] = true;
    } else {
        snprintf(buf, sizeof buf, "%dL", w);
        s->dow_nth[w % 7][5] = true;
    }
    strcat(out, buf);
}

static void gen_spec(spec *s, bool six)
{
    memset(s, 0, sizeof *s);
    s->six = six;
    char f[6][96] = {{0}};
    if (six)
        gen_field(f[0], s->sec, 0, 0, 59, 30);
    else
        s->sec[0] = true;
    gen_field(f[1], s->min, 1, 0, 59, 30);
    gen_field(f[2], s->hour, 2, 0, 23, 40);
    gen_dom(s, f[3]);
    gen_field(f[4], s->mon, 4, 1, 12, 85);
    gen_dow(s, f[5]);
    s->fixed = !strchr(f[1], '*') && !strchr(f[2], '*');
    s->dom_star = f[3][0] == '*';
    s->dow_star = f[5][0] == '*';
    snprintf(s->text, sizeof s->text, "%s%s%s %s %s %s %s", six ? f[0] : "", six ? " " : "",
             f[1], f[2], f[3], f[4], f[5]);
}

/* ---- brute force ------------------------------------------------------------ */

static int month_len(int y, int m)
{
    static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : len[m - 1];
}

/* Weekday (0 = Sunday) of a civil date, Zeller-free: via timegm. */
static int weekday_of(int y, int m, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};
    time_t t = timegm(&tm);
    struct tm out;
    gmtime_r(&t, &out);
    return out.tm_wday;
}

static bool is_workday(int y, int m, int d)
{
    int w = weekday_of(y, m, d);
    return w != 0 && w != 6;
}

/* The weekday nearest to day d within the month, by trying d, d-1, d+1, ... */
static int nearest_workday(int y, int m, int d)
{
    int len = month_len(y, m);
    if (is_workday(y, m, d))
        return d;
    for (int k = 1; k <= 2; k++) {
        if (d - k >= 1 && is_workday(y, m, d - k))
            return d - k;
        if (d + k <= len && is_workday(y, m, d + k))
            return d + k;
    }
    return d; /* unreachable for real months */
}

static bool day_matches(const spec *s, int y, int m, int d, int wday)
{
    int len = month_len(y, m);
    bool dom = s->dom[d] || (s->dom_last && d == len);
    if (s->dom_lastw) {
        int lw = len;
        while (!is_workday(y, m, lw))
            lw--;
        dom = dom || d == lw;
    }
    for (int w = 1; w <= 31 && !dom; w++)
        if (s->dom_w[w] && w <= len && nearest_workday(y, m, w) == d)
            dom = true;
    bool dow = s->dow[wday] || s->dow_nth[wday][(d - 1) / 7] ||
               (s->dow_nth[wday][5] && d + 7 > len);
    return s->dom_star || s->dow_star ? dom && dow : dom || dow;
}

/* Does the wall-clock time `wall` (seconds, local counted as UTC) match? */
static bool wall_matches(const spec *s, int64_t wall)
{
    time_t t = (time_t)wall;
    struct tm tm;
    gmtime_r(&t, &tm);
    return s->sec[tm.tm_sec] && s->min[tm.tm_min] && s->hour[tm.tm_hour] &&
           s->mon[tm.tm_mon + 1] &&
           day_matches(s, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_wday);
}

static int64_t wall_at(int64_t u)
{
    time_t t = (time_t)u;
    struct tm tm;
    localtime_r(&t, &tm);
    return (int64_t)u + tm.tm_gmtoff;
}

/* Fires in (after, end], with TZ already set. Returns the count. */
static int brute_fires(const spec *s, int64_t after, int64_t end, int64_t *out, int max)
{
    int step = s->six ? 1 : 60, n = 0;
    int64_t u = after - 3 * 3600; /* warm up: know which wall times were seen */
    u -= ((u % 60) + 60) % 60;
    int64_t prev = wall_at(u), seen_max = prev, minute_wall = prev;
    for (u += step; u <= end; u += step) {
        /* Offsets of these zones change only on whole minutes in the years
         * tested, so libc is asked once a minute. */
        int64_t sec = ((u % 60) + 60) % 60;
        if (sec == 0)
            minute_wall = wall_at(u);
        int64_t wall = minute_wall + sec;
        bool fire = false;
        if (s->fixed && wall > prev + step) /* a gap: did a fixed time fall in it? */
            for (int64_t w = prev + step; w < wall && !fire; w += step)
                fire = wall_matches(s, w);
        if (wall_matches(s, wall) && (!s->fixed || wall > seen_max))
            fire = true;
        if (fire && u > after && n < max)
            out[n++] = u;
        if (wall > seen_max)
            seen_max = wall;
        prev = wall;
    }
    return n;
}

/* A transition of the zone near a random instant of `year`, found with libc
 * alone; or a random instant when the zone has none that year. */
static int64_t pick_instant(int year)
{
    struct tm tm = {.tm_year = year - 1900, .tm_mon = rnd_in(0, 11), .tm_mday = rnd_in(1, 28),
                    .tm_hour = rnd_in(0, 23)};
    int64_t t = (int64_t)timegm(&tm);
    int64_t off = wall_at(t) - t;
    for (int day = 0; day < 400; day++) {
        int64_t next = t + 86400;
        if (wall_at(next) - next != off) { /* bisect to the second */
            int64_t lo = t, hi = next;
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (wall_at(mid) - mid == off)
                    lo = mid;
                else
                    hi = mid;
            }
            return hi;
        }
        t = next;
    }
    return t;
}

static void set_tz(const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, ":%s", name);
    setenv("TZ", buf, 1);
    tzset();
}

/* Run `cases` random cases; windows of +-half seconds around the instant. */
static void run_cases(int cases, bool six, int64_t half)
{
    enum { MAXF = 20000 };
    static int64_t want[MAXF];
    char err[512];
    int compared = 0, fires = 0;
    for (int c = 0; c < cases; c++) {
        const char *zname = zones[rnd_in(0, NZONES - 1)];
        const tz_zone *z = tz_load(zname, err, sizeof err);
        if (!z)
            fail_msg("%s", err);
        set_tz(zname);
        spec s;
        gen_spec(&s, six);
        cron_expr e;
        if (cron_parse(s.text, &e, err, sizeof err) < 0)
            fail_msg("generated expression rejected: %s", err);
        /* mostly the table's years; some past 2100, where both libc and
         * the engine follow the zone's TZ rule */
        int64_t mid = pick_instant(chance(90) ? rnd_in(1996, 2045) : rnd_in(2095, 2250));
        int64_t after = mid - half + rnd_in(0, 59), end = mid + half;
        int n = brute_fires(&s, after, end, want, MAXF);
        int64_t t = after;
        for (int i = 0;; i++) {
            t = cron_next(&e, z, t);
            bool in = t >= 0 && t <= end;
            if (i == n && !in)
                break;
            if (i >= n || !in || t != want[i])
                fail_msg("'%s' (fixed=%d) in %s after %lld: fire %d: engine %lld, brute force "
                         "%lld (PGR_CRON_DIFF_SEED=%llu, case %d)",
                         s.text, s.fixed, zname, (long long)after, i, (long long)(in ? t : -1),
                         (long long)(i < n ? want[i] : -1), (unsigned long long)rng_seed, c);
        }
        compared++;
        fires += n;
    }
    print_message("# %d cases (%s fields), %d fires compared\n", compared, six ? "6" : "5", fires);
}

static void seed(void)
{
    const char *env = getenv("PGR_CRON_DIFF_SEED");
    rng_state = env ? strtoull(env, NULL, 10) : 0x5eed2026cafeULL;
    if (!rng_state)
        rng_state = 1;
    rng_seed = rng_state;
}

static void test_diff_five_fields(void **state)
{
    seed();
    run_cases(2500, false, 12 * 3600);
}

static void test_diff_six_fields(void **state)
{
    run_cases(600, true, 90 * 60);
}

/* Zone offsets against libc over 1900-2200, every zone of the list. */
static void test_diff_offsets(void **state)
{
    char err[512];
    int n = 0;
    for (size_t i = 0; i < NZONES; i++) {
        const tz_zone *z = tz_load(zones[i], err, sizeof err);
        assert_non_null(z);
        set_tz(zones[i]);
        for (int k = 0; k < 2000; k++) {
            int64_t t = -2208988800LL + (int64_t)(rnd() % 9467280000ULL); /* 1900-2200 */
            int64_t want = wall_at(t) - t;
            if (tz_offset_at(z, t) != want)
                fail_msg("%s at %lld: offset %d, libc %lld", zones[i], (long long)t,
                         tz_offset_at(z, t), (long long)want);
            n++;
        }
    }
    print_message("# %d offsets compared\n", n);
}

/* Every zone of zone1970.tab against libc, 1850-2200. */
static void test_diff_offsets_all_zones(void **state)
{
    FILE *f = fopen("/usr/share/zoneinfo/zone1970.tab", "r");
    assert_non_null(f);
    char line[512], err[512];
    int zones_seen = 0, n = 0;
    while (fgets(line, sizeof line, f)) {
        char *cols[4] = {0};
        int k = 0;
        if (line[0] == '#')
            continue;
        for (char *tok = strtok(line, "\t\n"); tok && k < 4; tok = strtok(NULL, "\t\n"))
            cols[k++] = tok;
        if (k < 3)
            continue;
        const tz_zone *z = tz_load(cols[2], err, sizeof err);
        if (!z)
            fail_msg("%s", err);
        set_tz(cols[2]);
        for (int i = 0; i < 300; i++) {
            int64_t t = -3786825600LL + (int64_t)(rnd() % 11045217600ULL); /* 1850-2200 */
            int64_t want = wall_at(t) - t;
            if (tz_offset_at(z, t) != want)
                fail_msg("%s at %lld: offset %d, libc %lld", cols[2], (long long)t,
                         tz_offset_at(z, t), (long long)want);
            n++;
        }
        zones_seen++;
    }
    fclose(f);
    assert_true(zones_seen > 300);
    print_message("# %d zones, %d offsets compared\n", zones_seen, n);
}

/* Local -> UTC against libc: every instant's wall clock maps back to it. */
static void test_diff_local_to_utc(void **state)
{
    char err[512];
    for (size_t i = 0; i < NZONES; i++) {
        const tz_zone *z = tz_load(zones[i], err, sizeof err);
        set_tz(zones[i]);
        for (int k = 0; k < 500; k++) {
            int64_t t = 820454400LL + (int64_t)(rnd() % 1577836800ULL); /* 1996-2046 */
            int64_t out[2];
            int n = tz_local_to_utc(z, wall_at(t), out);
            if (n < 1 || (out[0] != t && (n < 2 || out[1] != t)))
                fail_msg("%s: wall clock of %lld maps to %d instants (%lld)", zones[i],
                         (long long)t, n, (long long)out[0]);
        }
    }
}

static int teardown(void **state)
{
    tz_unload_all();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_five_fields),
        cmocka_unit_test(test_diff_six_fields),
        cmocka_unit_test(test_diff_offsets),
        cmocka_unit_test(test_diff_offsets_all_zones),
        cmocka_unit_test(test_diff_local_to_utc),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
