/*
 * test_tz_formats.c - the TZif reader on files made for the test (in a
 * temporary TZDIR): a version-1 file (no 64-bit block, no footer), files
 * that are only a footer rule (POSIX TZ strings with M, J and zero-based
 * day forms, hours past 24, permanent DST), and broken files (truncated,
 * not TZif) that must be refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cron.h"
#include "tz.h"

static char dir[256];

static void write_file(const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* A version-2 file without transitions: one time type and a footer. */
static void write_rule_zone(const char *name, int32_t utoff, const char *footer)
{
    unsigned char buf[512];
    size_t n = 0;
    for (int block = 0; block < 2; block++) {
        memset(buf + n, 0, 44);
        memcpy(buf + n, "TZif2", 5);
        be32(buf + n + 36, 1); /* typecnt */
        be32(buf + n + 40, 4); /* charcnt */
        n += 44;
        be32(buf + n, (uint32_t)utoff);
        buf[n + 4] = 0, buf[n + 5] = 0;
        memcpy(buf + n + 6, "STD", 4);
        n += 10;
    }
    n += (size_t)snprintf((char *)buf + n, sizeof buf - n, "\n%s\n", footer);
    write_file(name, buf, n);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/pgr-tz-XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("TZDIR", dir, 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tz_unload_all();
    return system(cmd);
}

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static const tz_zone *load(const char *name)
{
    char err[512];
    const tz_zone *z = tz_load(name, err, sizeof err);
    if (!z)
        fail_msg("%s", err);
    return z;
}

static void test_version1_file(void **state)
{
    /* The first header and 32-bit block of the system's Berlin, as v1. */
    char err[256];
    size_t len;
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 16);
    len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = (uint32_t)buf[20 + 4 * i] << 24 | (uint32_t)buf[21 + 4 * i] << 16 |
               (uint32_t)buf[22 + 4 * i] << 8 | buf[23 + 4 * i];
    size_t v1 = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    assert_true(v1 < len);
    buf[4] = 0;
    write_file("berlin_v1", buf, v1);
    free(buf);
    const tz_zone *z = load("berlin_v1");
    unsetenv("TZDIR");
    const tz_zone *real = tz_load("Europe/Berlin", err, sizeof err);
    setenv("TZDIR", dir, 1);
    assert_non_null(real);
    for (int64_t t = utc(1902, 1, 1, 0, 0); t < utc(2037, 12, 1, 0, 0); t += 86400 * 7 + 3607)
        if (tz_offset_at(z, t) != tz_offset_at(real, t))
            fail_msg("v1 Berlin differs at %lld", (long long)t);
    /* the DST rules apply to it like to any zone */
    cron_expr e;
    assert_int_equal(cron_parse("30 2 * * *", &e, err, sizeof err), 0);
    assert_int_equal(cron_next(&e, z, utc(2030, 3, 30, 12, 0)), utc(2030, 3, 31, 1, 0));
}

static void test_footer_month_week_day(void **state)
{
    write_rule_zone("rule_us", -18000, "EST5EDT,M3.2.0,M11.1.0");
    const tz_zone *z = load("rule_us");
    assert_int_equal(tz_offset_at(z, utc(2026, 3, 8, 6, 59)), -18000);
    assert_int_equal(tz_offset_at(z, utc(2026, 3, 8, 7, 0)), -14400);
    assert_int_equal(tz_offset_at(z, utc(2026, 11, 1, 5, 59)), -14400);
    assert_int_equal(tz_offset_at(z, utc(2026, 11, 1, 6, 0)), -18000);
    /* past the precomputed years: 2226-03-12 is the second Sunday */
    assert_int_equal(tz_offset_at(z, utc(2226, 3, 12, 6, 59)), -18000);
    assert_int_equal(tz_offset_at(z, utc(2226, 3, 12, 7, 0)), -14400);
    char err[256];
    cron_expr e;
    assert_int_equal(cron_parse("30 2 * * *", &e, err, sizeof err), 0);
    assert_int_equal(cron_next(&e, z, utc(2226, 3, 11, 12, 0)), utc(2226, 3, 12, 7, 0));
    /* no explicit rule: POSIX's default (the US rules) */
    write_rule_zone("rule_default", -18000, "EST5EDT");
    assert_int_equal(tz_offset_at(load("rule_default"), utc(2026, 7, 1, 0, 0)), -14400);
}

static void test_footer_julian_forms(void **state)
{
    /* Jn counts 1-365 without Feb 29: J60 is always March 1 */
    write_rule_zone("rule_j", 10800, "XXX-3YYY,J60/2,J300/2");
    const tz_zone *z = load("rule_j");
    assert_int_equal(tz_offset_at(z, utc(2028, 2, 29, 22, 59)), 10800); /* 01:59 local */
    assert_int_equal(tz_offset_at(z, utc(2028, 2, 29, 23, 0)), 14400);  /* Mar 1 02:00 */
    /* n counts 0-365 with Feb 29: day 59 is Feb 29 in a leap year */
    write_rule_zone("rule_n", 10800, "XXX-3YYY,59/2,299/2");
    z = load("rule_n");
    assert_int_equal(tz_offset_at(z, utc(2028, 2, 28, 23, 0)), 14400); /* Feb 29 02:00 */
    assert_int_equal(tz_offset_at(z, utc(2027, 2, 28, 22, 59)), 10800);
    assert_int_equal(tz_offset_at(z, utc(2027, 2, 28, 23, 0)), 14400); /* Mar 1 02:00 */
    /* hours past 24 and negative (TZif v3): Jerusalem's and Nuuk's rules */
    write_rule_zone("rule_v3", 7200, "IST-2IDT,M3.4.4/26,M10.5.0");
    z = load("rule_v3");
    /* 2026: the fourth Thursday of March is the 26th; 26:00 is Fri 02:00 */
    assert_int_equal(tz_offset_at(z, utc(2026, 3, 26, 23, 59)), 7200);
    assert_int_equal(tz_offset_at(z, utc(2026, 3, 27, 0, 0)), 10800);
    write_rule_zone("rule_neg", -7200, "<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    z = load("rule_neg");
    /* last Sunday of March 2026 is the 29th; -1:00 is Sat 23:00 local */
    assert_int_equal(tz_offset_at(z, utc(2026, 3, 29, 0, 59)), -7200);
    assert_int_equal(tz_offset_at(z, utc(2026, 3, 29, 1, 0)), -3600);
}

static void test_footer_permanent_dst(void **state)
{
    /* DST from Jan 1 00:00 to Dec 31 25:00 (= next Jan 1 00:00): always on */
    write_rule_zone("rule_perm", -18000, "EST5EDT,0/0,J365/25");
    const tz_zone *z = load("rule_perm");
    for (int y = 2020; y < 2300; y += 7)
        for (int m = 1; m <= 12; m++)
            if (tz_offset_at(z, utc(y, m, m + 10, m, 0)) != -14400)
                fail_msg("%d-%02d: not in DST", y, m);
}

static void test_fixed_footer(void **state)
{
    write_rule_zone("rule_fixed", 19800, "IST-5:30");
    const tz_zone *z = load("rule_fixed");
    assert_int_equal(tz_offset_at(z, utc(2026, 7, 1, 0, 0)), 19800);
    assert_int_equal(tz_offset_at(z, utc(1900, 7, 1, 0, 0)), 19800);
}

static void test_broken_files(void **state)
{
    char err[512];
    write_file("garbage", "hello world, this is not a zone at all.....................", 60);
    assert_null(tz_load("garbage", err, sizeof err));
    assert_non_null(strstr(err, "not a TZif file"));
    assert_non_null(strstr(err, "time zone \"garbage\""));
    unsigned char head[60] = "TZif2";
    be32(head + 32, 1000); /* 1000 transitions that are not there */
    be32(head + 36, 1);
    be32(head + 40, 4);
    write_file("truncated", head, sizeof head);
    assert_null(tz_load("truncated", err, sizeof err));
    assert_non_null(strstr(err, "truncated TZif file"));
    write_rule_zone("badrule", 0, "XXX0YYY,M13.1.0,M1.1.0");
    assert_null(tz_load("badrule", err, sizeof err));
    assert_non_null(strstr(err, "unsupported TZ rule \"XXX0YYY,M13.1.0,M1.1.0\""));
    write_file("empty", "", 0);
    assert_null(tz_load("empty", err, sizeof err));
    /* a failed load is not cached: fixing the file makes it load */
    write_rule_zone("empty", 3600, "CET-1");
    assert_non_null(tz_load("empty", err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version1_file),
        cmocka_unit_test(test_footer_month_week_day),
        cmocka_unit_test(test_footer_julian_forms),
        cmocka_unit_test(test_footer_permanent_dst),
        cmocka_unit_test(test_fixed_footer),
        cmocka_unit_test(test_broken_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
