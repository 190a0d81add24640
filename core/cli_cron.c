/*
 * cli_cron.c - "pgreviewer cron ...": preview a schedule.
 *
 *   pgreviewer cron next 'EXPR' [--tz ZONE] [--from ISO8601] [--count N]
 *   pgreviewer cron describe 'EXPR'
 *
 * prints the next N fire instants after --from (exclusive), one per line,
 * as ISO-8601 local time in the zone with its numeric offset. Users preview
 * schedules with it and the tests drive the engine through it, so the output
 * is stable: nothing but the instants goes to stdout.
 */
#include "cron.h"
#include "tz.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CRON_MAX_COUNT 100000

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "pgreviewer cron: %s\n", why);
    fprintf(stderr,
            "usage: pgreviewer cron next 'EXPR' [--tz ZONE] [--from ISO8601] [--count N]\n"
            "       pgreviewer cron describe 'EXPR'\n"
            "  EXPR   5 fields (minute hour day-of-month month day-of-week), 6 with a\n"
            "         leading seconds field, or a macro such as @daily (docs/cron.md)\n"
            "  --tz     IANA time zone the expression is read in (default UTC)\n"
            "  --from   start after this instant, e.g. 2026-03-08T01:59:00-05:00,\n"
            "           2026-03-08T06:59:00Z, or 2026-03-08T01:59:00 (local in --tz);\n"
            "           default now\n"
            "  --count  how many fire times to print, 1-%d (default 5)\n",
            CRON_MAX_COUNT);
    return 2;
}

/* Read exactly n digits. Returns the value or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

/* Parse "+05:30", "-0500", "+05" or "Z" at p into seconds east. Returns 0
 * or -1. */
static int parse_offset(const char *p, int *off)
{
    if ((*p == 'Z' || *p == 'z') && !p[1]) {
        *off = 0;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return -1;
    int sign = *p++ == '-' ? -1 : 1;
    int h = digits(&p, 2), m = 0;
    if (h < 0 || h > 23)
        return -1;
    if (*p == ':')
        p++;
    if (*p && ((m = digits(&p, 2)) < 0 || m > 59))
        return -1;
    if (*p)
        return -1;
    *off = sign * (h * 3600 + m * 60);
    return 0;
}

/* Parse --from. A time without an offset is wall-clock time in zone: in an
 * overlap the first occurrence, in a gap the instant the gap ends (so fires
 * at that instant count as after it). Returns 0 and sets *utc, or -1. */
static int parse_iso(const char *s, const tz_zone *zone, int64_t *utc)
{
    const char *p = s;
    int y = digits(&p, 4), mo, d, h = 0, mi = 0, sec = 0;
    if (y < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 || *p++ != '-' ||
        (d = digits(&p, 2)) < 1 || d > tz_days_in_month(y, mo))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if ((h = digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || mi > 59)
            return -1;
        if (*p == ':' && (p++, (sec = digits(&p, 2)) < 0 || sec > 59))
            return -1;
        if (*p == '.' || *p == ',') { /* a fraction: "after 01:59:00.5" is after 01:59:00 */
            if (!isdigit((unsigned char)*++p))
                return -1;
            while (isdigit((unsigned char)*p))
                p++;
        }
    } else if (*p) {
        return -1;
    }
    int64_t local = tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    if (*p) {
        int off;
        if (parse_offset(p, &off) < 0)
            return -1;
        *utc = local - off;
        return 0;
    }
    int64_t out[2];
    int n = tz_local_to_utc(zone, local, out);
    *utc = n == 0 ? out[0] - 1 : out[0];
    return 0;
}

/* Print one instant as local ISO-8601 with a numeric offset. */
static void print_instant(const tz_zone *zone, int64_t t)
{
    int off = tz_offset_at(zone, t);
    int64_t local = t + off, days = local / 86400 - (local % 86400 < 0), y;
    int sod = (int)(local - days * 86400), m, d;
    tz_civil_from_days(days, &y, &m, &d);
    int a = off < 0 ? -off : off;
    printf("%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)y, m, d, sod / 3600,
           sod / 60 % 60, sod % 60, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    if (a % 60)
        printf(":%02d", a % 60);
    putchar('\n');
}

typedef struct next_args {
    const char *expr, *tz, *from;
    long count;
} next_args;

/* Parse "next"'s arguments. Returns 0, or the usage exit code. */
static int parse_next_args(int argc, char **argv, next_args *a)
{
    a->expr = NULL, a->tz = "UTC", a->from = NULL, a->count = 5;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL;
        const char *opts[] = {"--tz", "--from", "--count"};
        int which = -1;
        for (int k = 0; k < 3 && which < 0; k++) {
            size_t n = strlen(opts[k]);
            if (strncmp(arg, opts[k], n) == 0 && (arg[n] == '\0' || arg[n] == '='))
                which = k, val = arg[n] == '=' ? arg + n + 1 : NULL;
        }
        if (which < 0 && arg[0] == '-' && arg[1] == '-') {
            fprintf(stderr, "pgreviewer cron: unknown option %s\n", arg);
            return usage(NULL);
        }
        if (which < 0) {
            if (a->expr)
                return usage("give the expression as one quoted argument, e.g. '0 2 * * *'");
            a->expr = arg;
            continue;
        }
        if (!val && ++i >= argc) {
            fprintf(stderr, "pgreviewer cron: %s needs a value\n", opts[which]);
            return usage(NULL);
        }
        val = val ? val : argv[i];
        if (which == 0)
            a->tz = val;
        else if (which == 1)
            a->from = val;
        else {
            char *end;
            a->count = strtol(val, &end, 10);
            if (*end || end == val || a->count < 1 || a->count > CRON_MAX_COUNT) {
                fprintf(stderr, "pgreviewer cron: --count %s: expected a number 1-%d\n", val,
                        CRON_MAX_COUNT);
                return usage(NULL);
            }
        }
    }
    return a->expr ? 0 : usage("missing the cron expression");
}

static int cron_next_cmd(int argc, char **argv)
{
    next_args a;
    int rc = parse_next_args(argc, argv, &a);
    if (rc)
        return rc;
    char err[1024];
    cron_expr e;
    if (cron_parse(a.expr, &e, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const tz_zone *zone = tz_load(a.tz, err, sizeof err);
    if (!zone) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int64_t t = (int64_t)time(NULL);
    if (a.from && parse_iso(a.from, zone, &t) < 0) {
        fprintf(stderr, "pgreviewer cron: --from %s: expected an ISO-8601 time such as "
                        "2026-03-08T01:59:00-05:00, 2026-03-08T06:59:00Z or 2026-03-08T01:59:00\n",
                a.from);
        return 2;
    }
    for (long i = 0; i < a.count; i++) {
        t = cron_next(&e, zone, t);
        if (t < 0 && i == 0) {
            fprintf(stderr, "cron expression \"%s\" never fires%s\n", a.expr,
                    cron_never_fires(&e) ? ": no date matches its day-of-month, month and "
                                           "day-of-week fields"
                                         : " after the given time");
            return 1;
        }
        if (t < 0)
            break;
        print_instant(zone, t);
    }
    fflush(stdout);
    return 0;
}

/* "describe 'EXPR'": the expression in English, one line. */
static int cron_describe_cmd(int argc, char **argv)
{
    if (argc != 2)
        return usage("describe takes one quoted expression, e.g. '0 9 * * MON-FRI'");
    char err[1024], text[512];
    cron_expr e;
    if (cron_parse(argv[1], &e, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    cron_describe(&e, text, sizeof text);
    printf("%s%s\n", text, cron_never_fires(&e) ? " (never: no date matches)" : "");
    fflush(stdout);
    return 0;
}

int cmd_cron(int argc, char **argv)
{
    if (argc < 1 || !argv[0])
        return usage("missing sub-command: expected next or describe");
    if (strcmp(argv[0], "next") == 0)
        return cron_next_cmd(argc, argv);
    if (strcmp(argv[0], "describe") == 0)
        return cron_describe_cmd(argc, argv);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0)
        return usage(NULL);
    fprintf(stderr, "pgreviewer cron: unknown sub-command \"%s\": expected next or describe\n",
            argv[0]);
    return usage(NULL);
}
